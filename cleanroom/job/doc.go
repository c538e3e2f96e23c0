// Package job is how a room hands a query to an engine outside its
// process, such as the Apache Beam pipelines of module
// github.com/opencleanroom/cleanroom/beam (binary cleanroom-beam), and
// reads back the answer.
//
// The room still authenticates, decides by policy, debits the budget and
// audits every query; only the computation moves. It exports the
// collaboration's committed datasets (package columnar), writes a Plan
// (JSON: the query resolved against the collaboration's settings, with
// the epsilon and delta it is charged), and runs the engine's binary as a
// separate process:
//
//	cleanroom-beam query --export DIR --plan plan.json --out result.json --runner prism [--endpoint HOST:PORT] [pipeline options]
//
// The engine writes a Result (the rows the room releases) to result.json
// and exits 0; anything else is a failure, and the room answers the
// query with an error, charging nothing. Results go to the room's own
// directory, never to a third party. A separate process also keeps a
// pipeline library that ends its process on misuse (Privacy on Beam calls
// glog.Fatalf) away from the room's.
//
// # Same answers
//
// A Plan carries what package analytics needs to answer the same query
// (cleanroom/analytics, docs/PRIVACY.md): the groups (declared domains are
// public partitions), the filters, the metrics with their columns'
// bounds, k, epsilon and delta, and whether noise is off. The rules that
// turn an attribute value into a number, a truth value or a filter's
// decision are here (Number, Clamp, Truthy, Filter.Keep), tested against
// package analytics, so that both engines read values alike.
//
// A lift's and an ROI's intervals are computed by package analytics' own
// code (analytics.Metric.LiftInterval, ROIInterval) from the released
// statistics and the variance of the noise they carry. That noise is the
// engine's: Finish takes the epsilon of each statistic as the engine
// spent it, which may be a smaller share than package analytics' (Beam
// spends one on partition selection), and the Result reports it; the
// room refuses a result whose share exceeds the plan's.
package job
