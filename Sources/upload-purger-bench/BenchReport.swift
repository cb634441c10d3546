import Foundation

/// The benchmark's outputs: the Markdown table, the target check and the SVG chart, all from measured results.
enum BenchReport {
    // MARK: - Table

    static func table(_ results: [BenchResult]) -> String {
        var lines = [
            "| strategy | uploads / API request | polls / job | deletions / s | % of ceiling (ceiling / s) "
                + "| at saturation: deletions / s (% of ceiling) | 429s (% of requests) | latency p50 / p99 | completion noticed late (mean) "
                + "| jobs in flight: bound, median (min–max) | CPU s / 100k requests | peak RSS | API requests | wall |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for result in results {
            let cells = [
                result.title + (result.complete ? "" : " **(INCOMPLETE)**"),
                format(result.uploadsPerRequest, 1),
                format(result.pollsPerJob, 2),
                format(result.deletionsPerSecond, 0),
                "\(format(result.ceilingRatio * 100, 0)) % (\(format(result.ceilingPerSecond, 0)))",
                saturated(result),
                "\(result.rateLimited) (\(format(result.rateLimitedShare * 100, 1)) %)",
                "\(format(result.latencyP50Seconds, 1)) s / \(format(result.latencyP99Seconds, 1)) s",
                "+\(format(result.noticeDelayMeanSeconds * 1000, 0)) ms (+\(format(result.noticeDelayMeanRatio * 100, 0)) %"
                    + " of \(format(result.jobDurationMeanSeconds, 2)) s)",
                bounds(result.inFlightBounds),
                format(result.cpuPer100k, 0),
                "\(format(Double(result.peakResidentBytes) / 1_048_576, 0)) MB",
                "\(result.apiRequests)",
                "\(format(result.wallSeconds, 1)) s",
            ]
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }

    /// The per-second samples of the bound on jobs in flight, as `median (min–max)`.
    static func bounds(_ samples: [Int]) -> String {
        guard let low = samples.min(), let high = samples.max() else { return "–" }
        let median = samples.sorted()[samples.count / 2]
        return low == high ? "\(median)" : "\(median) (\(low)–\(high))"
    }

    /// What the completion events told about each upload, and what finding it out cost.
    static func outcomesTable(_ results: [BenchResult]) -> String {
        var lines = [
            "| strategy | uploads deleted / API request | lookups (GET /uploads) | deleted (events / simulator) "
                + "| not found | still present | events with failures naming them | inferred events |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for result in results {
            let naming =
                result.eventsWithFailures == 0
                ? "–"
                : "\(result.eventsNamingFailures) of \(result.eventsWithFailures) ("
                    + "\(format(Double(result.eventsNamingFailures) / Double(result.eventsWithFailures) * 100, 1)) %)"
            let cells = [
                result.title, format(result.uploadsPerRequest, 1), "\(result.lookups)",
                "\(result.reportedDeleted) / \(result.deleted)", "\(result.notFound)", "\(result.failed)", naming,
                "\(result.inferredEvents)",
            ]
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }

    /// The issue's targets for the shipped worker, each with its measured figure.
    static func targets(_ results: [BenchResult]) -> String {
        guard let shipped = results.first(where: { $0.strategy == BenchStrategy.uploadPurger.rawValue }) else {
            return ""
        }
        func line(_ name: String, _ met: Bool, _ figure: String) -> String {
            "- \(met ? "met" : "MISSED"): \(name) — measured \(figure)"
        }
        var lines = [
            line("≥ 90 uploads per API request", shipped.uploadsPerRequest >= 90, format(shipped.uploadsPerRequest, 1)),
            line("≤ 1.3 polls per job", shipped.pollsPerJob <= 1.3, format(shipped.pollsPerJob, 2)),
            line(
                "≥ 90 % of the ceiling at saturation (20–80 % of the backlog deleted)",
                (shipped.saturatedCeilingRatio ?? 0) >= 0.9,
                "\(saturated(shipped)); whole run including start-up and drain: "
                    + "\(format(shipped.ceilingRatio * 100, 0)) % (\(format(shipped.deletionsPerSecond, 0)) of "
                    + "\(format(shipped.ceilingPerSecond, 0)) deletions/s)"),
        ]
        for result in results {
            lines.append(
                line(
                    "\(result.title): every request accounted, the events' deletions the simulator's, no double deletion",
                    result.complete && result.doubleDeletions == 0 && result.deleted == result.reportedDeleted,
                    "\(result.deleted) of \(result.uploads) distinct ids deleted (events: \(result.reportedDeleted)), "
                        + "\(result.doubleDeletions) double deletions"))
        }
        return lines.joined(separator: "\n")
    }

    static func saturated(_ result: BenchResult) -> String {
        guard let rate = result.saturatedDeletionsPerSecond, let ratio = result.saturatedCeilingRatio else {
            return "n/a"
        }
        return "\(format(rate, 0)) (\(format(ratio * 100, 0)) %)"
    }

    static func format(_ value: Double, _ decimals: Int) -> String {
        String(format: "%.\(decimals)f", value)
    }

    // MARK: - Chart

    /// Two panels sharing the time axis: deletions per second (3-second moving average of the per-second samples)
    /// and 429 responses per second, one line per strategy.
    static func svg(_ results: [BenchResult], strategies: [BenchStrategy], caption: String) -> String {
        let width = 960.0
        let panelHeight = 230.0
        let left = 70.0
        let right = 20.0
        let plotWidth = width - left - right
        let maxT = max(results.flatMap { $0.samples.map(\.t) }.max() ?? 1, 1)
        let throughput = results.map { smooth(rates($0.samples, \.deletions), over: 3) }
        let limited = results.map { rates($0.samples, \.rateLimited) }
        var body: [String] = []
        body.append(
            ##"<text x="\##(left)" y="22" font-size="15" font-weight="bold">upload-purger-bench: throughput and 429s over time</text>"##
        )
        body.append(##"<text x="\##(left)" y="40" font-size="11" fill="#555">\##(escape(caption))</text>"##)
        let panels: [(title: String, series: [[(Double, Double)]], top: Double)] = [
            ("uploads deleted per second (3 s moving average)", throughput, 60),
            ("429 responses per second", limited, 60 + panelHeight + 50),
        ]
        for panel in panels {
            let maxY = niceCeiling(max(panel.series.flatMap { $0.map(\.1) }.max() ?? 1, 1))
            let top = panel.top
            let bottom = top + panelHeight
            body.append(##"<text x="\##(left)" y="\##(top - 6)" font-size="12">\##(panel.title)</text>"##)
            body.append(
                ##"<rect x="\##(left)" y="\##(top)" width="\##(plotWidth)" height="\##(panelHeight)" fill="none" stroke="#999"/>"##
            )
            for tick in ticks(upTo: maxY) {
                let y = bottom - tick / maxY * panelHeight
                body.append(
                    ##"<line x1="\##(left)" y1="\##(f(y))" x2="\##(left + plotWidth)" y2="\##(f(y))" stroke="#eee"/>"##)
                body.append(
                    ##"<text x="\##(left - 6)" y="\##(f(y + 4))" font-size="10" text-anchor="end">\##(format(tick, 0))</text>"##
                )
            }
            for tick in ticks(upTo: niceCeiling(maxT)) where tick <= maxT {
                let x = left + tick / maxT * plotWidth
                body.append(
                    ##"<text x="\##(f(x))" y="\##(bottom + 14)" font-size="10" text-anchor="middle">\##(format(tick, 0)) s</text>"##
                )
            }
            for (index, series) in panel.series.enumerated() where !series.isEmpty {
                let points = series.map { point in
                    "\(f(left + point.0 / maxT * plotWidth)),\(f(bottom - point.1 / maxY * panelHeight))"
                }
                body.append(
                    ##"<polyline fill="none" stroke="\##(strategies[index].colour)" stroke-width="1.6" points="\##(points.joined(separator: " "))"/>"##
                )
            }
        }
        let legendY = 60 + 2 * panelHeight + 50 + 30
        for (index, strategy) in strategies.enumerated() {
            let x = left + Double(index) * 220
            body.append(
                ##"<line x1="\##(f(x))" y1="\##(legendY)" x2="\##(f(x + 24))" y2="\##(legendY)" stroke="\##(strategy.colour)" stroke-width="3"/>"##
            )
            body.append(
                ##"<text x="\##(f(x + 30))" y="\##(legendY + 4)" font-size="11">\##(escape(strategy.title))</text>"##)
        }
        let height = legendY + 20
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
            viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif">
            <rect width="100%" height="100%" fill="white"/>
            \(body.joined(separator: "\n"))
            </svg>

            """
    }

    /// Per-interval rates from cumulative samples, placed at the interval's end.
    static func rates(_ samples: [BenchSampler.Sample], _ counter: KeyPath<BenchSampler.Sample, Int>) -> [(
        Double, Double
    )] {
        zip(samples, samples.dropFirst()).compactMap { previous, sample in
            let dt = sample.t - previous.t
            guard dt > 0.05 else { return nil }
            return (sample.t, Double(sample[keyPath: counter] - previous[keyPath: counter]) / dt)
        }
    }

    static func smooth(_ series: [(Double, Double)], over width: Int) -> [(Double, Double)] {
        series.indices.map { index in
            let window = series[max(0, index - width + 1)...index]
            return (series[index].0, window.reduce(0) { $0 + $1.1 } / Double(window.count))
        }
    }

    static func niceCeiling(_ value: Double) -> Double {
        let magnitude = pow(10, floor(log10(value)))
        for step in [1.0, 2, 2.5, 5, 10] where step * magnitude >= value { return step * magnitude }
        return 10 * magnitude
    }

    static func ticks(upTo maximum: Double) -> [Double] {
        let step = niceCeiling(maximum) / 5
        return stride(from: 0, through: maximum + step / 100, by: step).map { $0 }
    }

    private static func f(_ value: Double) -> String { format(value, 1) }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
    }
}
