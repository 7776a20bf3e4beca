// Ordered header fields of a request or response.

/// An ordered list of header fields, with names kept exactly as received.
///
/// Order and duplicates are preserved because they carry meaning (`Set-Cookie`, repeated
/// list-valued fields) and because a proxy or a log must be able to show what was sent.
/// Lookups are linear and ASCII case-insensitive: a request carries a dozen fields, for which a
/// scan of a contiguous array beats hashing every name into a Dictionary on the hot path.
public struct HTTPHeaders: Sequence, Hashable, Sendable, ExpressibleByDictionaryLiteral,
    CustomStringConvertible
{
    /// One header field line.
    public struct Field: Hashable, Sendable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public typealias Element = (name: String, value: String)

    @usableFromInline
    var fields: [Field]

    public init() {
        fields = []
    }

    /// Creates headers from `(name, value)` pairs, in order.
    public init(_ pairs: [(String, String)]) {
        fields = pairs.map { Field(name: $0.0, value: $0.1) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    /// Pre-sized storage for the parser, so typical requests never regrow the array.
    init(reservingCapacity capacity: Int) {
        fields = []
        fields.reserveCapacity(capacity)
    }

    public var count: Int { fields.count }
    public var isEmpty: Bool { fields.isEmpty }

    /// Appends a field; existing fields with the same name are kept.
    public mutating func add(name: String, value: String) {
        fields.append(Field(name: name, value: value))
    }

    /// Replaces every field named `name` (case-insensitively) by a single one.
    public mutating func replaceOrAdd(name: String, value: String) {
        remove(name: name)
        add(name: name, value: value)
    }

    /// Removes every field named `name` (case-insensitively).
    public mutating func remove(name: String) {
        fields.removeAll { HTTPSyntax.equalsIgnoringCase($0.name, name) }
    }

    /// The first value of `name`, ASCII case-insensitive, or nil.
    public subscript(name: String) -> String? {
        for field in fields where HTTPSyntax.equalsIgnoringCase(field.name, name) {
            return field.value
        }
        return nil
    }

    /// Every value of `name` in order of appearance.
    public func values(_ name: String) -> [String] {
        fields.compactMap { HTTPSyntax.equalsIgnoringCase($0.name, name) ? $0.value : nil }
    }

    /// Whether any field named `name` exists.
    public func contains(_ name: String) -> Bool {
        fields.contains { HTTPSyntax.equalsIgnoringCase($0.name, name) }
    }

    /// Whether `token` appears in the comma-separated list values of `name`, ASCII
    /// case-insensitive, across all fields of that name (`Connection: keep-alive, Upgrade`
    /// contains `upgrade`). Elements are OWS-trimmed; quoted strings are not interpreted because
    /// the list-valued fields this is meant for (Connection, Upgrade, TE) contain tokens only.
    public func containsToken(_ token: String, in name: String) -> Bool {
        for field in fields where HTTPSyntax.equalsIgnoringCase(field.name, name) {
            if HTTPSyntax.listContainsToken(field.value, token) { return true }
        }
        return false
    }

    /// Iterates fields in order as `(name, value)` tuples; a concrete iterator rather than
    /// `AnyIterator` so iteration is not a boxed closure call per element.
    public struct Iterator: IteratorProtocol {
        @usableFromInline let fields: [Field]
        @usableFromInline var index = 0

        @inlinable
        public mutating func next() -> Element? {
            guard index < fields.count else { return nil }
            defer { index += 1 }
            return (fields[index].name, fields[index].value)
        }
    }

    public func makeIterator() -> Iterator {
        Iterator(fields: fields)
    }

    /// Fields in order, as a random-access collection (cheaper than iterating the Sequence).
    public var all: [Field] { fields }

    public var underestimatedCount: Int { fields.count }

    public var description: String {
        fields.map { "\($0.name): \($0.value)" }.joined(separator: "\n")
    }

    // Hashable/Equatable compare fields exactly (names as received, order significant): two
    // requests are the same only if they were sent the same way, which is what the parser's
    // split-invariance tests need.
}
