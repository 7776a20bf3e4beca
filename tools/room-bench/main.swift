import ArgumentParser

/// `room-bench`: the rooms benchmark's client, for tools/bench/room-bench.sh. Everything goes
/// through the hub's public API, as device agents and customer portals use it:
///
///   setup   admin token → an org that auto-approves `--auto-kind`, an operator and an
///           approver, an API key (commands:propose), D devices each with an approved session
///           (shared with queue-bench: `BenchOrg`). Writes the devices file.
///   stream  each of D devices claims a command proposed into its session and streams events
///           about it (`progress` → `command.progress`, or `log` → `execution.log`) on
///           /ws/device; S portals per session room watch it on /ws/customer. Deliveries/s at
///           the portals over a window after warm-up, hub CPU per delivery, and device →
///           portal latency from a timestamp the device puts in each event. Devices and
///           portals may sit on different hub nodes.
///
/// Measured paths run on HubIO loops with callbacks (no task or thread per message), so the
/// client stays cheap next to the hub on a 2-core machine. `stream` prints one JSON object on
/// stdout and exits 1 when anything went wrong.
struct RoomBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "room-bench", abstract: "Rooms load client: setup, and device events streamed to portals watching the rooms.",
        subcommands: [Setup.self, Stream.self])
}

RoomBench.main()
