/// The condition of a conditional update beyond its id: which rows it may change. A row that
/// exists but does not match is left as it is and read back as `RecordUpdate.conflict`.
enum RecordCondition {
    /// The row's `state` column is one of these values.
    case stateIn([String])
    /// The column is NULL (e.g. `revoked_at`: a key is revoked once).
    case isNull(String)
    /// The integer column is at most the value.
    case atMost(String, Int64)
    /// The column equals the value (a NULL column never does).
    case equals(String, RecordValue)
    /// Every one of these holds (none: any row).
    case all([RecordCondition])
}
