/// The condition of a conditional update beyond its id: which rows it may change. A row that
/// exists but does not match is left as it is and read back as `RecordUpdate.conflict`.
enum RecordCondition {
    /// The row's `state` column is one of these values.
    case stateIn([String])
    /// The column is NULL (e.g. `revoked_at`: a key is revoked once).
    case isNull(String)
}
