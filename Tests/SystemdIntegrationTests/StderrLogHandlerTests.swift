import Logging
import SystemdIntegration
import Testing

@Suite("StderrLogHandler")
struct StderrLogHandlerTests {
    private func event(
        _ level: Logger.Level,
        _ message: Logger.Message,
        _ metadata: Logger.Metadata? = nil
    ) -> LogEvent {
        LogEvent(level: level, message: message, metadata: metadata, source: nil, file: "f", function: "g", line: 1)
    }

    @Test("formats time, level, identifier, message and sorted metadata")
    func format() {
        var handler = StderrLogHandler(label: "volume-reaper.agent", metadataProvider: nil)
        handler[metadataKey: "pod_uid"] = "u1"
        let line = handler.formattedLine(
            for: event(.warning, "volume kept", ["volume_path": "/v/a", "reason": "lock-held"]),
            secondsSinceEpoch: 1_795_937_400
        )
        #expect(line == "2026-11-29T07:30:00Z warning volume-reaper: volume kept pod_uid=u1 reason=lock-held volume_path=/v/a")
    }

    @Test("quotes values a reader could mis-split")
    func quoting() {
        let handler = StderrLogHandler(label: "x", identifier: "vr", metadataProvider: nil)
        let line = handler.formattedLine(
            for: event(
                .info,
                "m",
                [
                    "spaces": "a b",
                    "empty": "",
                    "eq": "k=v",
                    "newline": "one\ntwo",
                    "quote": "say \"hi\"",
                    "plain": "/path/ok",
                    "list": ["a", "b c"],
                ]
            ),
            secondsSinceEpoch: 946_782_245
        )
        #expect(
            line == #"2000-01-02T03:04:05Z info vr: m empty="" eq="k=v" list="[\"a\",\"b c\"]" newline="one\ntwo" plain=/path/ok quote="say \"hi\"" spaces="a b""#
        )
    }

    @Test("without metadata the line ends with the message")
    func noMetadata() {
        let handler = StderrLogHandler(label: "x", metadataProvider: nil)
        #expect(
            handler.formattedLine(for: event(.critical, "stopping"), secondsSinceEpoch: 0)
                == "1970-01-01T00:00:00Z critical volume-reaper: stopping"
        )
    }

    @Test("is a value: changing a copy leaves the original alone")
    func valueSemantics() {
        var original = StderrLogHandler(label: "a", logLevel: .notice)
        original.metadata = ["k": "v"]
        var copy = original
        copy.logLevel = .trace
        copy[metadataKey: "k"] = "changed"
        copy.identifier = "other"
        #expect(original.logLevel == .notice)
        #expect(original[metadataKey: "k"] == "v")
        #expect(original.identifier == "volume-reaper")
    }
}
