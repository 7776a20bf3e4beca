import Foundation
import PackagePlugin

/// Embeds the SQL migration files (`protocol/sql/NNNN_*.sql` for PostgreSQL and
/// `protocol/sql/sqlite/NNNN_*.sql` for SQLite) into the target as Swift string literals, before
/// each build. Embedding (rather than reading files beside the executable at run time) means
/// `swift run hubctl migrate`, `.build/release/hubctl` and a binary copied anywhere all carry
/// exactly the migrations they were built with. The script rewrites the output only when a file
/// changed, so an unchanged tree does not recompile.
@main
struct MigrationsPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let out = context.pluginWorkDirectoryURL.appending(path: "generated")
        let root = context.package.directoryURL
        return [
            .prebuildCommand(
                displayName: "Embedding SQL migrations from protocol/sql",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [root.appending(path: "scripts/embed-migrations.sh").path, root.appending(path: "protocol/sql").path, out.path],
                outputFilesDirectory: out),
        ]
    }
}
