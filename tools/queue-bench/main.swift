import ArgumentParser

/// `queue-bench`: the command queue benchmark's client, for tools/bench/queue-bench.sh
/// (contract: issue 9's plan, the HTTP API and the /ws/device queue messages). Everything goes
/// through the hub's public API, as a customer, an approver and device agents would use it:
///
///   setup         admin token → an org with an auto-approved kind, an operator and an
///                 approver, an API key (commands:propose), D devices each with an approved
///                 session. Writes the devices file, prints {org_id, api_key, ...}.
///   throughput    D device sockets claiming on command.available and answering results; the
///                 API key proposes the auto-approved kind into their sessions over keep-alive
///                 connections, with a bounded number of commands in flight. Commands/s, and
///                 with --postgres-url / --redis-url the stores' own counters per command.
///   latency       D device sockets; one command at a time proposed (kind needing approval),
///                 approved by the approver: time from sending the approve request until the
///                 device's socket receives command.available. --device-url puts the devices
///                 on another node.
///   sqlite-bound  single-row write transactions/s of SQLite in WAL mode (the embedded bound).
///
/// The measured paths run on HubIO loops with callbacks (HubWebSocketIO client sockets, a
/// keep-alive HTTP connection over HubHTTP's response parser): no task or thread per message,
/// so the client stays cheap next to the hub on a 2-core machine. Each measuring subcommand
/// prints one JSON object on stdout and exits 1 when anything went wrong.
struct QueueBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue-bench", abstract: "Command queue load client: setup, throughput, approval latency, SQLite bound.",
        subcommands: [Setup.self, Throughput.self, Latency.self, SQLiteBound.self])
}

QueueBench.main()
