import ArgumentParser

/// A member's role in an organisation, lowest to highest (`MemberRole` in HubStore).
enum MemberRoleArgument: String, CaseIterable, ExpressibleByArgument {
    case viewer, `operator`, approver, admin
}

/// `hubctl member …`: organisation membership (admin API).
struct MemberCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "member",
        abstract: "Add, remove and list the members of an organisation.",
        subcommands: [Add.self, Remove.self, List.self])

    /// `hubctl member add --org ID --user UUID --role R` → `POST /api/v1/admin/orgs/:org/members`.
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a user to an organisation, or change their role.")

        @OptionGroup var admin: AdminOptions

        @Option(help: "Organisation id (UUID).")
        var org: String

        @Option(help: "User id (UUID, the Supabase user's sub).")
        var user: String

        @Option(help: "Role: \(MemberRoleArgument.allCases.map(\.rawValue).joined(separator: ", ")).")
        var role: MemberRoleArgument

        func validate() throws {
            _ = try uuidArgument(org, "--org")
            _ = try uuidArgument(user, "--user")
        }

        struct Body: Encodable {
            var user_id: String
            var role: String
        }

        func run() async throws {
            let org = try uuidArgument(org, "--org")
            try await AdminAPI.call(admin, .post, "/api/v1/admin/orgs/\(org)/members",
                                    body: Body(user_id: try uuidArgument(user, "--user"), role: role.rawValue))
        }
    }

    /// `hubctl member remove --org ID --user UUID` → `DELETE /api/v1/admin/orgs/:org/members/:user`.
    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a user from an organisation.")

        @OptionGroup var admin: AdminOptions

        @Option(help: "Organisation id (UUID).")
        var org: String

        @Option(help: "User id (UUID).")
        var user: String

        func validate() throws {
            _ = try uuidArgument(org, "--org")
            _ = try uuidArgument(user, "--user")
        }

        func run() async throws {
            try await AdminAPI.call(admin, .delete,
                                    "/api/v1/admin/orgs/\(try uuidArgument(org, "--org"))/members/\(try uuidArgument(user, "--user"))")
        }
    }

    /// `hubctl member list --org ID` → `GET /api/v1/admin/orgs/:org/members`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the members of an organisation.")

        @OptionGroup var admin: AdminOptions

        @Option(help: "Organisation id (UUID).")
        var org: String

        func validate() throws {
            _ = try uuidArgument(org, "--org")
        }

        func run() async throws {
            try await AdminAPI.call(admin, .get, "/api/v1/admin/orgs/\(try uuidArgument(org, "--org"))/members")
        }
    }
}
