// Package model is a lookalike model that a clean room trains under
// differential privacy and a member applies on its own machine: the file
// format (cleanroom.dev/model/v1), its strict parser, scoring, and the
// training algorithm. It imports nothing of the room (no storage, no
// policy engine), so the partner's side scores its customers without it.
//
// # Method
//
// The model is a forest of random decision trees whose leaf label counts
// carry Laplace noise: Jagannathan, Pillaipakkamnatt and Wright, "A
// practical differentially private random decision tree classifier",
// Transactions on Data Privacy 5 (2012). A tree's structure is drawn
// without looking at the data, from the features' declared domains and
// bounds alone: at each node a feature chosen at random (a categorical one
// not yet used on the path; a numeric one at a threshold drawn uniformly
// within the range the path leaves it), split into one child per domain
// value or two children at the threshold, down to a fixed depth. Then each
// training person is routed to one node of every tree (a leaf, or the
// categorical node where its value lies outside the domain), and each such
// node's two counts (label false, label true) get Laplace noise.
//
// # Privacy
//
// A person adds one to one count of each tree, so one tree's counts have
// L1 sensitivity 1 and Laplace noise of scale 1/ε_tree makes them ε_tree-DP.
// Every tree is trained on all the training people, so the trees compose
// sequentially: a forest of T trees at ε_tree each is (T·ε_tree)-DP. (They
// would compose in parallel on disjoint parts of the data, at the same
// signal-to-noise ratio, but only if each person's part were a function of
// that person alone; positions in a list are not.) The held-out accuracy
// is two noisy counts (people predicted right, wrong), to which each
// held-out person adds one, at its own ε_acc. Who is held out is drawn at
// random for each person, independently of everyone else. The whole model
// is (T·ε_tree + ε_acc, 0)-DP; the room charges exactly that, Model.Epsilon.
//
// Everything else in the file is post-processing of those noisy counts: a
// node's counts are the sums of the noisy counts in its subtree, and a node
// whose noisy total is below MinLeaf (the collaboration's k) is withheld
// with its subtree: a person who reaches it is scored at its parent. The
// file holds the features' declared domains and bounds, the trees' splits
// (drawn from them), the noisy counts and the noisy accuracy; never a row,
// a token or an exact count.
//
// # Format
//
// A model is one JSON object (Model), format "cleanroom.dev/model/v1".
// Features are named as the room names them ("member.column") and by the
// column of the member's own list (Column). A tree is a list of nodes, the
// root first; a node's children come after it. Parse refuses anything
// else: unknown keys, nodes out of order or shared, splits outside the
// declared domains and bounds, negative counts, and sizes beyond the limits
// below.
//
// # Scoring
//
// A person's score is the mean, over the trees, of the share of
// label-true people at the node it reaches in each (the deepest node on
// its path that the model holds), smoothed by one person of either label:
// (true + 1) / (all + 2). (Jagannathan et al. sum the counts over the trees
// instead; the mean of smoothed shares lets a tree whose random splits
// happen to carry the signal count as much as one with larger, flatter
// leaves, which makes a forest's AUC vary less from one draw of its
// structure to the next: in TestAUCAgainstNonPrivateForest's data, at 6,000
// people, the worst of 20 forests ranked at 0.748 instead of 0.725.) A
// categorical value outside the domain stops the path at that node; a
// numeric value is clamped to the bounds, and one that is not a number
// counts as the bound nearest zero, as the room aggregates it.
package model
