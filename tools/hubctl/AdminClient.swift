import ArgumentParser
import Foundation
import HubHTTP
import HubHTTPClient

/// Options every admin API command takes: where the hub is, the credential, output format.
struct AdminOptions: ParsableArguments {
    @Option(name: .customLong("url"), help: ArgumentHelp("Base URL of the hub (default: $DEVICEHUB_URL, else http://127.0.0.1:8080).", valueName: "url"))
    var url: String?

    @Option(name: .customLong("token"), help: ArgumentHelp("Admin token, or an API key with scope admin (default: $DEVICEHUB_ADMIN_TOKEN; prefer the variable, command lines are visible to other users).", valueName: "token"))
    var token: String?

    @Flag(name: .customLong("json"), help: "Print the response body exactly as received instead of pretty-printed.")
    var rawJSON = false

    @Option(name: .customLong("timeout"), help: "Seconds to wait for the hub's answer.")
    var timeoutSeconds: Int = 30

    private static var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// The hub's base URL without a trailing slash.
    var baseURL: String {
        let chosen = url ?? Self.environment["DEVICEHUB_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:8080"
        return chosen.hasSuffix("/") ? String(chosen.dropLast()) : chosen
    }

    /// The credential; ArgumentParser reports a missing one as a usage error.
    func bearerToken() throws -> String {
        if let token, !token.isEmpty { return token }
        if let token = Self.environment["DEVICEHUB_ADMIN_TOKEN"], !token.isEmpty { return token }
        throw ValidationError("no admin credential: pass --token or set DEVICEHUB_ADMIN_TOKEN")
    }

    func validate() throws {
        guard timeoutSeconds > 0 else { throw ValidationError("--timeout must be positive") }
    }

    /// `--url U --token T org get ID` → `org get ID --url U --token T`: the options given before
    /// the first subcommand name move behind the arguments (ahead of a `--` terminator, if any).
    static func hoistingLeadingOptions(_ arguments: [String]) -> [String] {
        let valued: Set<String> = ["--url", "--token", "--timeout"]
        var leading: [String] = []
        var i = 0
        while i < arguments.count {
            let argument = arguments[i]
            let name = String(argument.prefix { $0 != "=" })
            if argument == "--json" {
                leading.append(argument)
                i += 1
            } else if valued.contains(name) {
                leading.append(argument)
                if !argument.contains("="), i + 1 < arguments.count {
                    leading.append(arguments[i + 1])
                    i += 1
                }
                i += 1
            } else {
                break
            }
        }
        guard !leading.isEmpty else { return arguments }
        var rest = Array(arguments[i...])
        let terminator = rest.firstIndex(of: "--") ?? rest.endIndex
        rest.insert(contentsOf: leading, at: terminator)
        return rest
    }
}

/// Calls the admin API of a running hub over HubHTTPClient (never through server internals)
/// and prints the outcome: the JSON response on stdout (pretty-printed unless `--json`), or the
/// problem's code and detail on stderr with exit status 1.
enum AdminAPI {
    static func call(_ options: AdminOptions, _ method: HTTPMethod, _ path: String, body: (some Encodable)? = Optional<Empty>.none) async throws {
        let token = try options.bearerToken()
        var headers: HTTPHeaders = ["Authorization": "Bearer \(token)", "Accept": "application/json"]
        var bytes: [UInt8] = []
        if let body {
            headers.add(name: "Content-Type", value: "application/json")
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            bytes = Array(try encoder.encode(body))
        }
        let client = try HTTPClient()
        defer { client.shutdown() }
        let response: HTTPClientResponse
        do {
            response = try await client.request(method: method, url: options.baseURL + path, headers: headers, body: bytes,
                                                timeout: .seconds(options.timeoutSeconds))
        } catch {
            printError("error: \(method) \(options.baseURL)\(path): \(error)")
            throw ExitCode.failure
        }
        guard response.isSuccess else {
            printError(describeFailure(response))
            throw ExitCode.failure
        }
        if response.body.isEmpty { return }
        print(options.rawJSON ? response.bodyText : prettyJSON(response.body) ?? response.bodyText)
    }

    /// A placeholder body type for calls without a body.
    struct Empty: Encodable {}

    /// `error: HTTP 409 conflict: <detail>` from a problem+json body, or the status and the
    /// start of whatever else the server sent.
    static func describeFailure(_ response: HTTPClientResponse) -> String {
        if let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any],
           let code = object["code"] as? String {
            let detail = (object["detail"] as? String) ?? (object["title"] as? String) ?? ""
            return "error: HTTP \(response.status) \(code)" + (detail.isEmpty ? "" : ": \(detail)")
        }
        let text = response.bodyText.prefix(500).trimmingCharacters(in: .whitespacesAndNewlines)
        return "error: HTTP \(response.status)" + (text.isEmpty ? "" : ": \(text)")
    }

    static func prettyJSON(_ body: [UInt8]) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]),
              let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Writes one line to stderr.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Validates a UUID argument and returns it in canonical lowercase form; being a UUID also
/// means it cannot change the shape of the URL path it is put into.
func uuidArgument(_ value: String, _ option: String) throws -> String {
    guard let uuid = UUID(uuidString: value) else { throw ValidationError("\(option) must be a UUID, got '\(value)'") }
    return uuid.uuidString.lowercased()
}
