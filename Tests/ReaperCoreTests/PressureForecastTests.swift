import Foundation
import ReaperCore
import Testing

/// Issue 11: the forecast (`reapableAt`, hour buckets) and the pure half of
/// pressure mode, on a controlled clock.
@Suite("Reconciler: forecast and disk pressure")
struct PressureForecastTests {
    /// Finished Job pods whose volumes were last touched `idle` seconds ago.
    static func node(idles: [TimeInterval], bytes: [UInt64]? = nil) -> NodeFixture {
        var node = NodeFixture()
        for (index, idle) in idles.enumerated() {
            let uid = Fixture.uid(index + 1)
            node.pods.append(Fixture.pod(uid, name: "job-\(index + 1)", finishedAt: Fixture.ago(idle)))
            node.addVolume(uid: uid, scan: Fixture.scan(idle: idle, bytes: bytes?[index] ?? UInt64(index + 1) << 20, files: 10))
        }
        return node
    }

    @Test("volumes idle 10m, 20m and 40m under idle.after 30m: reapableAt +20m, +10m, and reap now; chart buckets")
    func forecast() throws {
        let node = Self.node(idles: [600, 1200, 2400])
        let plan = node.plan()
        let byUID = Dictionary(uniqueKeysWithValues: plan.volumes.map { ($0.podUID, $0) })
        let ten = try #require(byUID[Fixture.uid(1)]), twenty = try #require(byUID[Fixture.uid(2)]), forty = try #require(byUID[Fixture.uid(3)])
        expect(ten, .keep, [.recentAccess])
        #expect(ten.reapableAt == Fixture.now.addingTimeInterval(1200))
        #expect(twenty.reapableAt == Fixture.now.addingTimeInterval(600))
        expect(forty, .reap, [.podTerminated, .idle])
        #expect(forty.reapableAt == nil)

        let forecast = Forecast.build(from: plan, within: 6 * 3600)
        #expect(forecast.buckets.count == 6)
        #expect(forecast.reclaimableNow == 3 << 20)
        #expect(forecast.buckets[0].bytes == (1 << 20) + (2 << 20))
        #expect(forecast.buckets[0].volumes == 2)
        #expect(forecast.buckets[0].biggest.first?.pod == "job-2")
        #expect(forecast.buckets.dropFirst().allSatisfy { $0.bytes == 0 })
        #expect(Forecast.reclaimable(in: plan, within: 0) == 3 << 20)
        #expect(Forecast.reclaimable(in: plan, within: 3600) == 6 << 20)
        let chart = forecast.render()
        #expect(chart.contains("reclaimable now: 3.0 MiB (1 volumes)"), "\(chart)")
        #expect(chart.contains("+0h..1h"), "\(chart)")
        #expect(chart.contains("biggest: batch/job-2 scratch 2.0 MiB (+1 more)"), "\(chart)")
        #expect(chart.contains("+5h..6h"), "\(chart)")

        // Across hours: idle.after 2h puts 20m idle at +1h40m, 10m at +1h50m, 40m at +1h20m.
        var slow = node
        slow.policy.idle.after = 2 * 3600
        let later = Forecast.build(from: slow.plan(), within: 3 * 3600)
        #expect(later.buckets.map(\.volumes) == [0, 3, 0])
        #expect(later.reclaimableNow == 0)
        let table = PlanTable.render(slow.plan(), now: Fixture.now)
        #expect(table.contains("REAP IN"))
        #expect(table.contains("1h20m"), "\(table)")
    }

    @Test("reapableAt: an annotation keeps until it is old enough; other keeps have none")
    func reapableAtAnnotationAndOthers() throws {
        var node = NodeFixture(pods: [Fixture.pod(Fixture.uid(1), annotations: [Policy().annotation.key: RFC3339.format(Fixture.ago(600))])])
        #expect(try node.verdict().reapableAt == Fixture.now.addingTimeInterval(45 * 60 - 600))
        node.pods = [Fixture.pod(Fixture.uid(1), phase: "Running")]
        #expect(try node.verdict().reapableAt == nil)
    }

    static func pressure(node: NodeFixture, availablePercent: Double, total: UInt64 = 100 << 20) -> PressureAssessment {
        let usage = FilesystemUsage(
            path: Fixture.kubeletRoot, totalBytes: total, availableBytes: UInt64(Double(total) * availablePercent / 100),
            totalInodes: 100_000, availableInodes: 90_000
        )
        return PressureAssessment.assess(
            usage, threshold: PressureThreshold(available: .percent(15), inodesAvailable: .percent(10), hysteresis: .percent(5), source: "test"),
            wasActive: false
        )
    }

    @Test("in pressure: terminated pods' volumes idle past pressure.idleAfter go, biggest first, only as many as needed")
    func pressureReaps() throws {
        // 10 MiB short of 15% of 100 MiB: the 8 MiB and 4 MiB volumes go, the 2 MiB one stays.
        var node = Self.node(idles: [600, 600, 600, 120], bytes: [2 << 20, 8 << 20, 4 << 20, 16 << 20])
        node.policy.pressure = Policy.Pressure()
        let running = Fixture.uid(9)
        node.pods.append(Fixture.pod(running, name: "web", phase: "Running", finishedAt: nil))
        node.addVolume(uid: running, scan: Fixture.scan(idle: 7200, bytes: 50 << 20))
        var input = node.input
        input.pressure = DiskPressure(kubeletRoot: Self.pressure(node: node, availablePercent: 5))
        #expect(input.pressure?.active == true)
        #expect(input.pressure?.kubeletRoot.bytesNeeded == 10 << 20)
        let plan = Reconciler.plan(input)
        let byUID = Dictionary(uniqueKeysWithValues: plan.volumes.map { ($0.podUID, $0) })
        expect(try #require(byUID[Fixture.uid(2)]), .reap, [.podTerminated, .diskPressure])
        expect(try #require(byUID[Fixture.uid(3)]), .reap, [.podTerminated, .diskPressure])
        expect(try #require(byUID[Fixture.uid(1)]), .keep, [.recentAccess])
        // Idle 2 minutes, under pressure.idleAfter 5m: kept, however big.
        expect(try #require(byUID[Fixture.uid(4)]), .keep, [.recentAccess])
        expectKept(try #require(byUID[running]), because: .podRunning)
        #expect(plan.pressure?.active == true)
        #expect(plan.pressure?.pressureReaps == 2)
        #expect(plan.pressure?.nothingToReap == false)
        #expect(plan.pressureElsewhere == nil)

        // Without a pressure section the measurement changes nothing.
        node.policy.pressure = nil
        input.policy = node.policy
        #expect(Reconciler.plan(input).reaps.isEmpty)
    }

    @Test("pressure: protected and excluded pods are never touched; the cap rises only to pressure.maxReapsPerCycle")
    func pressureKeepsRules() throws {
        var node = Self.node(idles: [600, 600, 600], bytes: [8 << 20, 8 << 20, 8 << 20])
        node.pods[0].annotations["volume-reaper.io/keep"] = "true"
        node.pods[1].namespace = "kube-system"
        node.policy.pressure = Policy.Pressure()
        node.policy.limits.maxReapsPerCycle = 0
        node.policy.pressure?.maxReapsPerCycle = 1
        var input = node.input
        input.pressure = DiskPressure(kubeletRoot: Self.pressure(node: node, availablePercent: 1))
        let plan = Reconciler.plan(input)
        let byUID = Dictionary(uniqueKeysWithValues: plan.volumes.map { ($0.podUID, $0) })
        expectKept(try #require(byUID[Fixture.uid(1)]), because: .protected)
        expectKept(try #require(byUID[Fixture.uid(2)]), because: .namespaceExcluded)
        expect(try #require(byUID[Fixture.uid(3)]), .reap, [.podTerminated, .diskPressure])
        node.policy.pressure?.maxReapsPerCycle = 0
        input.policy = node.policy
        expect(try #require(Reconciler.plan(input).volumes.first { $0.podUID == Fixture.uid(3) }), .keep, [.limitMaxReaps])
    }

    @Test("an emptyDir filesystem elsewhere in pressure: only volumes on it go; the kubelet root's and an unmeasured one's stay")
    func pressureElsewhere() throws {
        // Volumes 1-2 on the kubelet root's filesystem (8:1), 3-4 on a pods disk (8:16), 5 on an unmeasured one (8:32).
        var node = Self.node(idles: [600, 600, 600, 600, 600], bytes: [8 << 20, 8 << 20, 4 << 20, 2 << 20, 8 << 20])
        let devices = ["8:1", "8:1", "8:16", "8:16", "8:32"]
        for index in node.directories.indices {
            for volume in node.directories[index].volumes.indices {
                node.directories[index].volumes[volume].scan.device = devices[index]
            }
        }
        node.policy.pressure = Policy.Pressure()
        func usage(_ path: String, device: String, availablePercent: Double) -> PressureAssessment {
            PressureAssessment.assess(
                FilesystemUsage(path: path, totalBytes: 100 << 20, availableBytes: UInt64(availablePercent) << 20, totalInodes: 100_000, availableInodes: 90_000, device: device),
                threshold: PressureThreshold(available: .percent(15), inodesAvailable: .percent(10), hysteresis: .percent(5), source: "test"),
                wasActive: false
            )
        }
        var input = node.input
        // The pods disk is 3 MiB short: the 4 MiB volume covers it, the 2 MiB one stays.
        input.pressure = DiskPressure(
            kubeletRoot: usage(Fixture.kubeletRoot, device: "8:1", availablePercent: 50),
            elsewhere: [usage(Fixture.kubeletRoot + "/pods", device: "8:16", availablePercent: 12)]
        )
        #expect(input.pressure?.active == true)
        let plan = Reconciler.plan(input)
        let byUID = Dictionary(uniqueKeysWithValues: plan.volumes.map { ($0.podUID, $0) })
        expect(try #require(byUID[Fixture.uid(3)]), .reap, [.podTerminated, .diskPressure])
        expect(try #require(byUID[Fixture.uid(4)]), .keep, [.recentAccess])
        for uid in [1, 2, 5] { expect(try #require(byUID[Fixture.uid(uid)]), .keep, [.recentAccess]) }
        #expect(plan.pressure?.active == false)
        #expect(plan.pressureElsewhere?.map(\.pressureReaps) == [1])
        #expect(plan.pressureFilesystems.map(\.filesystem.device) == ["8:1", "8:16"])
        #expect(PlanTable.render(plan, now: Fixture.now).contains("disk \(Fixture.kubeletRoot)/pods: 12.0 MiB free of 100.0 MiB (12.0%), threshold 15.0 MiB: IN PRESSURE"))

        // The kubelet root's filesystem in pressure instead: its volumes go, the pods disk's stay.
        input.pressure = DiskPressure(
            kubeletRoot: usage(Fixture.kubeletRoot, device: "8:1", availablePercent: 10),
            elsewhere: [usage(Fixture.kubeletRoot + "/pods", device: "8:16", availablePercent: 50)]
        )
        let rootPlan = Reconciler.plan(input)
        #expect(Set(rootPlan.reaps.map(\.podUID)) == [Fixture.uid(1)], "5 MiB short: one 8 MiB volume of the root's filesystem")
        #expect(rootPlan.pressure?.pressureReaps == 1)

        // Only the unmeasured filesystem's volume could go: nothing to reap.
        input.pressure = DiskPressure(
            kubeletRoot: usage(Fixture.kubeletRoot, device: "8:1", availablePercent: 50),
            elsewhere: [usage(Fixture.kubeletRoot + "/pods", device: "8:16", availablePercent: 12)]
        )
        node.directories.removeSubrange(2..<4)
        input.inventory = node.input.inventory
        let stuck = Reconciler.plan(input)
        #expect(stuck.reaps.isEmpty)
        #expect(stuck.pressureElsewhere?.first?.nothingToReap == true)
    }

    @Test("hysteresis: enter below the threshold, leave at threshold plus hysteresis; amounts parse")
    func hysteresis() {
        let threshold = PressureThreshold(available: .percent(15), inodesAvailable: .absolute(100), hysteresis: .percent(5), source: "test")
        func usage(_ percent: UInt64, inodes: UInt64 = 1000) -> FilesystemUsage {
            FilesystemUsage(path: "/", totalBytes: 100, availableBytes: percent, totalInodes: 10_000, availableInodes: inodes)
        }
        #expect(!PressureAssessment.assess(usage(16), threshold: threshold, wasActive: false).active)
        #expect(PressureAssessment.assess(usage(14), threshold: threshold, wasActive: false).active)
        #expect(PressureAssessment.assess(usage(18), threshold: threshold, wasActive: true).active)
        #expect(PressureAssessment.assess(usage(18), threshold: threshold, wasActive: true).bytesNeeded == 0)
        #expect(!PressureAssessment.assess(usage(20), threshold: threshold, wasActive: true).active)
        let inodes = PressureAssessment.assess(usage(50, inodes: 40), threshold: threshold, wasActive: false)
        #expect(inodes.active && inodes.inodesNeeded == 60)
        #expect(SpaceAmount.parse("15%") == .percent(15))
        #expect(SpaceAmount.parse("10Gi") == .absolute(10 << 30))
        #expect(SpaceAmount.parse("1.5G") == .absolute(1_500_000_000))
        #expect(SpaceAmount.parse("100000") == .absolute(100_000))
        for bad in ["", "%", "150%", "-5%", "10XB", "ten", "1e3", "5 %x"] { #expect(SpaceAmount.parse(bad) == nil, "\(bad)") }
    }
}
