import Logging
import SystemdIntegration
import Testing

@Suite("Journal field names and rendering")
struct FieldNameTests {
    @Test(
        "metadata keys map to journal field names",
        arguments: [
            ("volume_path", "VOLUME_PATH"),
            ("pod_uid", "POD_UID"),
            ("POD_NAMESPACE", "POD_NAMESPACE"),
            ("message_id", "MESSAGE_ID"),
            ("MESSAGE_ID", "MESSAGE_ID"),
            ("error.message", "ERROR_MESSAGE"),
            ("kubernetes.io/config-hash", "KUBERNETES_IO_CONFIG_HASH"),
            ("volumePath", "VOLUMEPATH"),
            ("_SYSTEMD_UNIT", "SYSTEMD_UNIT"),
            ("__x", "X"),
            ("._weird", "WEIRD"),
            ("9lives", "F_9LIVES"),
            ("_1st", "F_1ST"),
            ("größe", "GR__E"),
            ("a b=c", "A_B_C"),
        ]
    )
    func mapping(key: String, expected: String) {
        #expect(JournaldLogHandler.journalFieldName(key) == expected)
    }

    @Test("keys with nothing usable are dropped", arguments: ["", "_", "___", "-", ".", "ü"])
    func dropped(key: String) {
        // "ü" becomes "_", which is stripped like any leading underscore.
        #expect(JournaldLogHandler.journalFieldName(key) == nil)
    }

    @Test("field names are at most 64 characters")
    func truncated() throws {
        let long = String(repeating: "a", count: 100)
        #expect(JournaldLogHandler.journalFieldName(long) == String(repeating: "A", count: 64))
        let digits = try #require(JournaldLogHandler.journalFieldName(String(repeating: "7", count: 80)))
        #expect(digits.count == 64)
        #expect(digits.hasPrefix("F_7"))
    }

    @Test("every mapped name is valid for journald")
    func validNames() {
        for key in ["x", "a.b.c", "__a__", "ÄÖÜ-ok", "0", "CODE_LINE", String(repeating: "ß", count: 70)] {
            guard let name = JournaldLogHandler.journalFieldName(key) else { continue }
            #expect(!name.isEmpty && name.count <= 64)
            #expect(name.first != "_" && !(name.first!.isNumber))
            #expect(name.allSatisfy { $0 == "_" || ("A"..."Z").contains($0) || ("0"..."9").contains($0) })
        }
    }

    @Test("levels map to syslog priorities")
    func priorities() {
        let expected: [Logger.Level: Int] = [
            .trace: 7, .debug: 7, .info: 6, .notice: 5, .warning: 4, .error: 3, .critical: 2,
        ]
        for level in Logger.Level.allCases {
            #expect(JournaldLogHandler.syslogPriority(level) == expected[level])
        }
    }

    @Test("an event becomes the handler's fields, then sorted metadata")
    func fieldsForEvent() {
        var handler = JournaldLogHandler(label: "reaper", syslogIdentifier: "vr-test", metadataProvider: nil)
        handler[metadataKey: "pod_uid"] = "uid-1"
        handler[metadataKey: "volume_path"] = "/old"
        let event = LogEvent(
            level: .error,
            message: "deleting failed",
            metadata: [
                "volume_path": "/var/lib/kubelet/pods/uid-1/volumes/x/y",
                "message_id": .string(MessageID.reapFailed.rawValue),
                "note": "a=b\nsecond line",
                "message": "forged",
                "priority": "0",
                "nested": ["b": ["x", "1"], "a": "q\"uote"],
                "_": "dropped",
            ],
            source: nil,
            file: "SystemdIntegrationTests/FieldNameTests.swift",
            function: "fieldsForEvent()",
            line: 42
        )
        let fields = handler.fields(for: event)
        #expect(
            fields == [
                JournalField(name: "MESSAGE", value: "deleting failed"),
                JournalField(name: "PRIORITY", value: "3"),
                JournalField(name: "SYSLOG_IDENTIFIER", value: "vr-test"),
                JournalField(name: "CODE_FILE", value: "SystemdIntegrationTests/FieldNameTests.swift"),
                JournalField(name: "CODE_LINE", value: "42"),
                JournalField(name: "CODE_FUNC", value: "fieldsForEvent()"),
                JournalField(name: "LOGGER_LABEL", value: "reaper"),
                JournalField(name: "META_MESSAGE", value: "forged"),
                JournalField(name: "MESSAGE_ID", value: MessageID.reapFailed.rawValue),
                JournalField(name: "NESTED", value: #"{"a":"q\"uote","b":["x","1"]}"#),
                JournalField(name: "NOTE", value: "a=b\nsecond line"),
                JournalField(name: "POD_UID", value: "uid-1"),
                JournalField(name: "META_PRIORITY", value: "0"),
                JournalField(name: "VOLUME_PATH", value: "/var/lib/kubelet/pods/uid-1/volumes/x/y"),
            ]
        )
    }

    @Test("metadata provider and attached error are sent too")
    func providerAndError() {
        struct Boom: Error, CustomStringConvertible { var description: String { "boom" } }
        let provider = Logger.MetadataProvider { ["trace_id": "t-1", "pod_uid": "from-provider"] }
        var handler = JournaldLogHandler(label: "", metadataProvider: provider)
        handler.metadata = ["pod_uid": "from-handler", "node": "n1"]
        let event = LogEvent(
            level: .info, message: "m", error: Boom(), metadata: nil, source: nil,
            file: "f", function: "g", line: 1
        )
        let fields = Dictionary(handler.fields(for: event).map { ($0.name, $0.value) }) { first, _ in first }
        #expect(fields["TRACE_ID"] == "t-1")
        #expect(fields["POD_UID"] == "from-provider")
        #expect(fields["NODE"] == "n1")
        #expect(fields["ERROR_MESSAGE"] == "boom")
        #expect(fields["ERROR_TYPE"]?.hasSuffix("Boom") == true)
        #expect(fields["SYSLOG_IDENTIFIER"] == "volume-reaper")
        #expect(fields["LOGGER_LABEL"] == nil)
    }
}
