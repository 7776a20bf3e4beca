import ArgumentParser

/// `hubctl org …`: organisations (admin API).
struct OrgCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "org",
        abstract: "Create and show organisations.",
        subcommands: [Create.self, Get.self])

    /// `hubctl org create --name N [--slug S]` → `POST /api/v1/admin/orgs`.
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an organisation (the slug is derived from the name when not given).")

        @OptionGroup var admin: AdminOptions

        @Option(help: "Display name.")
        var name: String

        @Option(help: "URL-safe unique identifier.")
        var slug: String?

        struct Body: Encodable {
            var name: String
            var slug: String?
        }

        func run() async throws {
            try await AdminAPI.call(admin, .post, "/api/v1/admin/orgs", body: Body(name: name, slug: slug))
        }
    }

    /// `hubctl org get ID` → `GET /api/v1/admin/orgs/:id`.
    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one organisation.")

        @OptionGroup var admin: AdminOptions

        @Argument(help: "Organisation id (UUID).")
        var id: String

        func validate() throws {
            _ = try uuidArgument(id, "ID")
        }

        func run() async throws {
            try await AdminAPI.call(admin, .get, "/api/v1/admin/orgs/\(try uuidArgument(id, "ID"))")
        }
    }
}
