import Foundation
import PackagePlugin

/// Generates `BuildInfo.swift` (version, git commit, build time) and `OpenAPIDocument.swift`
/// (protocol/openapi.yaml, embedded so `/api/docs` never depends on files beside the binary)
/// before each build. The script rewrites a file only when its content changes, so an
/// unchanged tree does not recompile.
@main
struct BuildInfoPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let out = context.pluginWorkDirectoryURL.appending(path: "generated")
        let root = context.package.directoryURL
        return [
            .prebuildCommand(
                displayName: "Generating build info and embedded OpenAPI document",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [root.appending(path: "scripts/generate-build-info.sh").path, root.path, out.path],
                outputFilesDirectory: out),
        ]
    }
}
