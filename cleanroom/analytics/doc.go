// Package analytics computes the aggregates a room releases about the
// matched people, and nothing else: counts, sums, averages, match rates,
// ROI, lift and k-means profiles, per group of at least k people, with
// differential-privacy noise.
//
// It works on columns in memory: each member's attribute columns (Column:
// dictionary-encoded where a column is grouped by, filtered by value or
// read as a flag, a float64 a row where it is read only as a bounded
// number), and the join (Table: for every matched person, the row in each
// member's list). It does no I/O and knows nothing of tokens or
// identifiers; the room resolves a query spec into a Plan. A plan is
// answered in one pass over the join, a block of people at a time, all
// metrics together, on all cores (accumulate.go).
//
// # Privacy
//
// Each matched person is in exactly one group, so every per-group statistic
// has L0 sensitivity 1 and the groups compose in parallel. A query's
// epsilon is split evenly among the statistics it releases (the group
// counts, and each metric's sums or counts). Numeric values are clamped to
// their declared bounds before they are summed, which bounds a person's
// contribution. Noise is Laplace, from Google's differential-privacy
// library.
//
// Groups are public partitions when every group_by column has a declared
// domain: every combination is evaluated, empty ones included, and released
// when its noisy count reaches k, so which groups appear (and how many were
// withheld) depends on noisy counts alone. Otherwise groups come from the
// data and must also pass the library's Laplace partition-selection
// threshold for the plan's (epsilon, delta); how many did not is not told.
// Match rates are rounded to whole percent and shown as ">85%" above 85%.
// k-means is DP-Lloyd: data-independent initial centroids, and every
// iteration releases only noisy per-cluster counts and sums; a cluster is
// released when its final noisy size reaches k. docs/PRIVACY.md is the
// model these rules follow.
package analytics
