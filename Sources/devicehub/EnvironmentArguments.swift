import ArgumentParser

/// Turns `DEVICEHUB_*` environment variables into command-line arguments, so that they go
/// through the same parsing and validation as flags. The options are found by reflection on
/// the command, so a new option gets its variable without being listed twice.
enum EnvironmentArguments {
    /// `arguments` with an `--option value` (or `--[no-]flag`) appended for every variable whose
    /// option is not already on the command line.
    static func merge<C: ParsableCommand>(_ command: C.Type, arguments: [String], environment: [String: String]) -> [String] {
        var merged = arguments
        for child in Mirror(reflecting: C()).children {
            guard let label = child.label, label.hasPrefix("_") else { continue }
            let name = kebab(String(label.dropFirst()))
            let variable = "DEVICEHUB_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
            guard let value = environment[variable] else { continue }
            let present = arguments.contains { $0 == "--\(name)" || $0.hasPrefix("--\(name)=") || $0 == "--no-\(name)" }
            if present { continue }
            if String(describing: type(of: child.value)).hasPrefix("Flag<") {
                let on = ["1", "true", "yes", "on"].contains(value.lowercased())
                merged.append(on ? "--\(name)" : "--no-\(name)")
            } else {
                merged.append("--\(name)=\(value)")
            }
        }
        return merged
    }

    /// `maxBodyBytes` → `max-body-bytes`.
    static func kebab(_ camel: String) -> String {
        var out = ""
        for ch in camel {
            if ch.isUppercase { out += "-" + ch.lowercased() } else { out.append(ch) }
        }
        return out
    }
}
