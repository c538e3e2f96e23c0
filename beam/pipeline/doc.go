// Package pipeline holds the room's work as Apache Beam pipelines, for
// lists past what one machine holds: the match and the query engine's
// aggregates, with Privacy on Beam (github.com/google/differential-privacy/
// privacy-on-beam/v3, package pbeam), and partners' PAIR encryption.
//
// # Query
//
// The input is a room's export (package cleanroom/columnar): each member's
// (token, row) pairs and attribute columns, split into shards by a keyed
// hash of the token, so that a token is in the same shard for every
// member. The pipeline is
//
//	shards ──ParDo(join)──► matched people (and each member's own people)
//	       ──ParDo──► one PCollection<person, contribution> per statistic
//	       ──pbeam.MakePrivate, Count / SumPerKey (SelectPartitions)──► noisy statistics per group
//	       ──Flatten, GroupByKey──► one line per group
//
// Each Privacy on Beam aggregation (the group counts, each sum, each match
// rate's denominator, each lift's cells) keys every person by its privacy
// unit twice: its per-person combine and its contribution bounding. On a
// distributed runner the aggregations run as one pipeline. On Prism, which
// holds all of a pipeline's elements in its one process, each aggregation
// is a pipeline of its own, run one after another on its own join of the
// shards (RunQuery, Passes), so that only one aggregation's people are in
// memory at a time. The first computes the group counts and, for groups
// drawn from the data, selects the partitions; the others take the
// selected keys as public partitions (post-processing of a DP release).
// The output lines of all the passes are merged by group.
//
// The join of a shard runs on one worker, in memory: each member's tokens
// at their lowest row (a repeated token is a duplicate, resolved as package
// matcher resolves it), the tokens present in every member, and the values
// of the columns the plan reads. Filters, groups and the clamping of values
// to their bounds are per-person transforms, applied there, with the rules
// of package job (the same as package analytics). The person, the privacy
// unit, is a matched identifier, keyed by its row in the first member's
// list; a match rate's denominator counts the member's own people, keyed
// by their rows.
//
// # Privacy
//
// The plan's epsilon is split evenly among the statistics it releases, as
// package analytics splits it: the group counts, each sum (sum, avg, a
// ROI's revenue and cost), each match rate's denominator, each lift's
// cells. Every statistic is a pbeam aggregation with Laplace noise,
// MaxPartitionsContributed 1 (a person is in one group) and bounds: 1 for
// counts, the column's declared bounds for sums (a ROI's revenue sums the
// clamped revenue columns, whose spans add up). So each has exactly the
// noise of the local engine's: Laplace of scale 1/ε for counts and
// max(|lo|, |hi|)/ε for sums, ε being the statistic's share. An average is
// a noisy sum over the group's noisy count, as in the local engine (not
// pbeam.MeanPerKey, which would spend the average's share on a count of
// its own and give another noise).
//
// Declared domains are public partitions: every combination is evaluated,
// empty ones included (pbeam's PublicPartitions). Groups drawn from the
// data are chosen by pbeam.SelectPartitions (the DP library's
// PreAggSelectPartition) with the plan's delta and one more equal share
// of epsilon, and every statistic is then computed on the selected groups
// as public partitions (post-processing of a DP release). The local engine
// instead releases data-drawn groups whose noisy count passes Laplace
// thresholding, with no share of its own; the charge (epsilon and delta)
// is the same, and both are (epsilon, delta)-DP in a person, but on
// data-drawn groups Beam's statistics get a share of ε/(parts+1) rather
// than ε/parts. k applies to noisy counts in both. The result reports the
// share its statistics had (job.Result.StatisticEpsilon), and a lift's and
// an ROI's intervals are computed from that share's Laplace variance,
// 2(span/ε)², by package analytics' interval code (job.Finish): on
// data-drawn groups they count the larger noise of Beam's smaller share,
// so that they cover what Beam releases.
//
// With noise off (a setting every member agreed to), the privacy spec is
// in pbeam's TestModeWithContributionBounding: no noise, every non-empty
// group selected, contributions still bounded, which are the local
// engine's exact answers.
//
// # Running
//
// Pipelines are built here and run by the cleanroom-beam binary, in a
// process of its own: pbeam ends its process (glog.Fatalf) on misuse, which
// must never be the room's.
package pipeline
