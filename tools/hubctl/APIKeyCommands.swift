import ArgumentParser

/// `hubctl api-key …`: API keys (admin API).
struct APIKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api-key",
        abstract: "Create, list and revoke API keys.",
        subcommands: [Create.self, List.self, Revoke.self])

    /// `hubctl api-key create --org ID|--hub-wide --name N --scope S… [--expires-in-days D]`
    /// → `POST /api/v1/admin/api-keys`. The key itself is in the response, shown this once.
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an API key (the response holds the key; it is shown only once).",
            discussion: "Scopes: admin, devices:read, devices:write (more in later versions). A hub-wide key (--hub-wide) has no organisation and may only carry scope admin.")

        @OptionGroup var admin: AdminOptions

        @Option(help: "Organisation the key acts for (UUID).")
        var org: String?

        @Flag(name: .customLong("hub-wide"), help: "A key of no organisation (scope admin only).")
        var hubWide = false

        @Option(help: "Name, to recognise the key in listings.")
        var name: String

        @Option(name: .customLong("scope"), help: "A scope of the key; repeat for several.")
        var scopes: [String] = []

        @Option(name: .customLong("expires-in-days"), help: "Days until the key expires (default: never).")
        var expiresInDays: Int?

        func validate() throws {
            switch (org, hubWide) {
            case (nil, false): throw ValidationError("give --org ID or --hub-wide")
            case (.some, true): throw ValidationError("give either --org or --hub-wide, not both")
            case (let org?, false): _ = try uuidArgument(org, "--org")
            case (nil, true): break
            }
            if scopes.isEmpty { throw ValidationError("give at least one --scope") }
            if let expiresInDays, expiresInDays <= 0 { throw ValidationError("--expires-in-days must be positive") }
        }

        struct Body: Encodable {
            var orgID: String?
            var name: String
            var scopes: [String]
            var expiresInDays: Int?

            enum CodingKeys: String, CodingKey {
                case orgID = "org_id", name, scopes, expiresInDays = "expires_in_days"
            }

            // org_id is sent as an explicit null for a hub-wide key (the API tells the two
            // apart by it); expires_in_days is left out when unset.
            func encode(to encoder: Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(orgID, forKey: .orgID)
                try c.encode(name, forKey: .name)
                try c.encode(scopes, forKey: .scopes)
                try c.encodeIfPresent(expiresInDays, forKey: .expiresInDays)
            }
        }

        func run() async throws {
            let body = Body(orgID: try org.map { try uuidArgument($0, "--org") }, name: name, scopes: scopes, expiresInDays: expiresInDays)
            try await AdminAPI.call(admin, .post, "/api/v1/admin/api-keys", body: body)
        }
    }

    /// `hubctl api-key list [--org ID]` → `GET /api/v1/admin/api-keys[?org_id=ID]`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List API keys of an organisation (without --org: the hub-wide keys).")

        @OptionGroup var admin: AdminOptions

        @Option(help: "Organisation id (UUID).")
        var org: String?

        func validate() throws {
            if let org { _ = try uuidArgument(org, "--org") }
        }

        func run() async throws {
            let query = try org.map { "?org_id=\(try uuidArgument($0, "--org"))" } ?? ""
            try await AdminAPI.call(admin, .get, "/api/v1/admin/api-keys\(query)")
        }
    }

    /// `hubctl api-key revoke ID` → `POST /api/v1/admin/api-keys/:id/revoke`.
    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke an API key.")

        @OptionGroup var admin: AdminOptions

        @Argument(help: "API key id (UUID).")
        var id: String

        func validate() throws {
            _ = try uuidArgument(id, "ID")
        }

        func run() async throws {
            try await AdminAPI.call(admin, .post, "/api/v1/admin/api-keys/\(try uuidArgument(id, "ID"))/revoke")
        }
    }
}
