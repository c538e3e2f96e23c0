# METADATA
# title: cleanroom default sharing policy
# description: >-
#   Decides every action in the room. The decision is an object with allow,
#   reasons (one sentence for every denial; never a data value) and the
#   constraints the room enforces (group size, epsilon, columns, list sizes).
#   A collaboration's own module (package collaboration) may add denials
#   and constraints; constraints from every source combine strictest-wins, so
#   nothing can loosen the room's defaults.
package cleanroom

decision := {
	"allow": count(deny) == 0,
	"reasons": sort([r | some r in deny]),
	"constraints": effective,
}

# The default constraints depend only on the collaboration (members,
# settings) and the room's defaults, so the engine computes them once per
# collaboration state and passes them as input.constraints; without them
# (unit tests, a collaboration module that may depend on the action), they
# are computed here.
effective := input.constraints if {
	input.constraints
} else := constraints

roles := {"partner", "analyst", "auditor", "room-auditor", "operator"}

operator_actions := {"room.read", "partner.register"}

# The audit log (digests and decisions, never data) is exported by auditors
# and the operator. The room scopes what an auditor receives to what
# concerns its partner; a room-wide auditor, whom the operator registers
# as such, and the operator receive the whole log.
audit_actions := {"audit.export"}

audit_roles := {"auditor", "room-auditor"}

# Room-level actions of those who work in collaborations: listing the ones
# that concern them (the room filters the list to those).
listing_actions := {"collaboration.list"}

# Any principal may read its own registration (its role and partner).
self_actions := {"principal.self"}

collab_actions := {
	"collaboration.create", "collaboration.read", "collaboration.accept", "collaboration.revoke",
	"secret.deliver", "dataset.upload", "dataset.reencrypt", "dataset.discard", "match.run", "query.run",
	"budget.read", "policy.propose", "policy.approve",
	"model.train", "audience.activate",
}

# Actions that touch data: refused once a member revoked or the collaboration expired.
# A member discarding its own upload in progress (dataset.discard) only deletes
# what it sent, which the room deletes anyway once the collaboration is revoked
# or expired: it is not among them.
data_actions := {"dataset.upload", "dataset.reencrypt", "match.run", "query.run", "model.train", "audience.activate"}

auditor_actions := {"collaboration.read", "budget.read"}

# Every action this policy decides (policy.Actions in Go is the same set).
known_actions := (((operator_actions | collab_actions) | audit_actions) | listing_actions) | self_actions

# Only a partner itself (not its analysts) shapes the collaboration and its data.
partner_only := {
	"collaboration.create", "collaboration.accept", "collaboration.revoke", "secret.deliver",
	"dataset.upload", "dataset.reencrypt", "dataset.discard", "match.run", "policy.propose", "policy.approve",
	"audience.activate",
}

collab := object.get(input, "collaboration", {})

members := {m | some m in object.get(collab, "members", [])}

# --- constraints, strictest wins ---------------------------------------------
#
# Sources: the room's defaults (data.room.defaults), the collaboration's
# settings, the collaboration's module, and each member's own settings. A
# minimum takes the largest value any source sets, a maximum the smallest
# positive one, an allow-list the intersection, a deny-list the union. Each
# is written out rather than computed by a generic helper: every rule costs
# the evaluator time, and a decision should take tens of microseconds.

default custom_constraints := {}

custom_constraints := data.collaboration.constraints

settings := object.get(collab, "settings", {})

sources := array.concat(
	[data.room.defaults, settings, custom_constraints],
	[object.get(settings, ["members", m], {}) | some m in members],
)

min_group_size := max({0} | {v | some s in sources; v := s.min_group_size})

min_list_size := max({0} | {v | some s in sources; v := s.min_list_size})

min_upload_difference := max({0} | {v | some s in sources; v := s.min_upload_difference})

epsilon_min_per_query := max({0} | {v | some s in sources; v := s.epsilon_min_per_query})

epsilon_per_query := min(vals) if {
	vals := {v | some s in sources; v := s.epsilon_per_query; v > 0}
	count(vals) > 0
} else := 0

epsilon_budget := min(vals) if {
	vals := {v | some s in sources; v := s.epsilon_budget; v > 0}
	count(vals) > 0
} else := 0

epsilon_match := min(vals) if {
	vals := {v | some s in sources; v := s.epsilon_match; v > 0}
	count(vals) > 0
} else := 0

delta_per_query := min(vals) if {
	vals := {v | some s in sources; v := s.delta_per_query; v > 0}
	count(vals) > 0
} else := 0

delta_budget := min(vals) if {
	vals := {v | some s in sources; v := s.delta_budget; v > 0}
	count(vals) > 0
} else := 0

max_list_size := min(vals) if {
	vals := {v | some s in sources; v := s.max_list_size; v > 0}
	count(vals) > 0
} else := 0

max_queries_per_day := min(vals) if {
	vals := {v | some s in sources; v := s.max_queries_per_day; v > 0}
	count(vals) > 0
} else := 0

max_matches_per_day := min(vals) if {
	vals := {v | some s in sources; v := s.max_matches_per_day; v > 0}
	count(vals) > 0
} else := 0

max_uploads_per_day := min(vals) if {
	vals := {v | some s in sources; v := s.max_uploads_per_day; v > 0}
	count(vals) > 0
} else := 0

never_output := {c | some s in sources; some c in object.get(s, "never_output_columns", [])}

allowed_metrics := intersection({{m | some m in s.allowed_metrics} | some s in sources; is_array(s.allowed_metrics)})

# A dimension is allowed only where every source that lists dimensions lists
# it. The lists that open dimensions are the room's and the settings' (the
# collaboration's and each member's), which every member accepted; a
# collaboration module's list can only narrow them: with none of those
# lists, no dimension is allowed, whatever a module says. Never-output
# columns are never allowed.
agreed_sources := array.concat(
	[data.room.defaults, settings],
	[object.get(settings, ["members", m], {}) | some m in members],
)

agreed_dimension_lists := {{d | some d in s.allowed_dimensions} | some s in agreed_sources; is_array(s.allowed_dimensions)}

module_dimensions := object.get(custom_constraints, "allowed_dimensions", null)

dimension_lists := agreed_dimension_lists | {{d | some d in module_dimensions} | is_array(module_dimensions)}

allowed_dimensions := {d | some d in intersection(dimension_lists); not never_out(d)} if {
	count(agreed_dimension_lists) > 0
} else := set()

# never_out(c): column c ("member.column", or a bare name in tests) is never
# output: listed as itself, or bare (that column of any member).
never_out(c) if c in never_output

never_out(c) if {
	parts := split(c, ".")
	count(parts) == 2
	parts[1] in never_output
}

constraints := {
	"min_group_size": min_group_size,
	"epsilon_per_query": epsilon_per_query,
	"epsilon_min_per_query": epsilon_min_per_query,
	"epsilon_budget": epsilon_budget,
	"epsilon_match": epsilon_match,
	"delta_per_query": delta_per_query,
	"delta_budget": delta_budget,
	"min_list_size": min_list_size,
	"max_list_size": max_list_size,
	"min_upload_difference": min_upload_difference,
	"max_queries_per_day": max_queries_per_day,
	"max_matches_per_day": max_matches_per_day,
	"max_uploads_per_day": max_uploads_per_day,
	"allowed_dimensions": sort([d | some d in allowed_dimensions]),
	"allowed_metrics": sort([m | some m in allowed_metrics]),
	"never_output_columns": sort([c | some c in never_output]),
}

# --- who may act --------------------------------------------------------------
#
# These rules run for every action, so they read the input directly rather
# than through helper rules: each rule evaluated costs a few microseconds.
# A missing field makes a "not ..." condition true, so it denies.

deny contains "the principal's role is not one the room knows" if not input.principal.role in roles

deny contains "this action is not one the room's policy knows" if {
	not input.action in known_actions
}

deny contains "the room's operator does not act on collaborations" if {
	input.action in listing_actions
	input.principal.role == "operator"
}

deny contains "only auditors and the room's operator export the audit log" if {
	input.action in audit_actions
	not input.principal.role in (audit_roles | {"operator"})
}

deny contains "only the room's operator may do this" if {
	input.action in operator_actions
	input.principal.role != "operator"
}

deny contains "the room's operator does not act on collaborations" if {
	input.action in collab_actions
	input.principal.role == "operator"
}

deny contains "only members of the collaboration may act on it" if {
	input.action in collab_actions
	input.principal.role != "operator"
	not input.principal.partner in input.collaboration.members
}

deny contains "auditors read the audit log but never touch data" if {
	input.principal.role in audit_roles
	input.action in collab_actions
	not input.action in auditor_actions
}

deny contains "only a partner itself may do this, not its analysts" if {
	input.action in partner_only
	input.principal.role != "partner"
}

deny contains "a collaboration needs at least two members" if {
	input.action == "collaboration.create"
	count(members) < 2
}

deny contains "a member revoked this collaboration: it no longer touches data" if {
	input.action in data_actions
	input.collaboration.revoked == true
}

deny contains "the collaboration has expired" if {
	input.action in data_actions
	input.collaboration.expires_unix > 0
	input.now_unix >= input.collaboration.expires_unix
}

# --- uploads --------------------------------------------------------------------

# Rules for one action start with input.action == "...": OPA indexes
# equality on the input, so for any other action it skips them unread.

# Sizes count distinct identifiers: a thousand copies of one person are one
# person. The room knows them at the commit; before, only the rows.
deny contains sprintf("the list has fewer distinct identifiers than the collaboration's minimum of %d", [effective.min_list_size]) if {
	input.action == "dataset.upload"
	d := input.resource.dataset.distinct
	d > 0
	d < effective.min_list_size
}

# Fewer rows than the minimum cannot hold enough distinct identifiers: known
# at the start of an upload that declares its rows, before anything is sent.
deny contains sprintf("the list has fewer distinct identifiers than the collaboration's minimum of %d", [effective.min_list_size]) if {
	input.action == "dataset.upload"
	rows := input.resource.dataset.rows
	rows > 0
	rows < effective.min_list_size
}

deny contains sprintf("the list is larger than the collaboration's maximum of %d rows", [effective.max_list_size]) if {
	input.action == "dataset.upload"
	effective.max_list_size > 0
	input.resource.dataset.rows > effective.max_list_size
}

# A new list that differs from the same member's previous one by a handful of
# identifiers is refused. The count compares the member's own two lists, which
# it knows, so the refusal tells it nothing about anyone else's; what keeps a
# re-upload from singling someone out is that match results are noisy and
# every match run costs budget (see docs/PRIVACY.md).
deny contains sprintf("the list differs from your previous one by fewer than %d identifiers, which could single people out", [effective.min_upload_difference]) if {
	input.action == "dataset.upload"
	d := input.resource.dataset.difference_from_previous
	d > 0
	d < effective.min_upload_difference
}

deny contains "your daily limit of uploads to this collaboration is reached" if {
	input.action == "dataset.upload"
	effective.max_uploads_per_day > 0
	object.get(usage, "uploads_today", 0) >= effective.max_uploads_per_day
}

# --- matching -------------------------------------------------------------------

deny contains sprintf("member %s has not uploaded its list yet", [m]) if {
	input.action == "match.run"
	some m in members
	not collab.datasets[m].uploaded
}

deny contains "the collaboration's daily limit of match runs is reached" if {
	input.action == "match.run"
	effective.max_matches_per_day > 0
	object.get(usage, "matches_today", 0) >= effective.max_matches_per_day
}

# A match releases a noisy overlap, charged like a query.
deny contains "the collaboration's privacy budget is spent" if {
	input.action == "match.run"
	not collab.settings.noise_off
	object.get(usage, "epsilon_spent", 0) + effective.epsilon_match > effective.epsilon_budget
}

# --- queries --------------------------------------------------------------------

query := input.resource.query

usage := object.get(input, "usage", {})

deny contains "queries wait until every member's list is matched" if {
	input.action == "query.run"
	some m in input.collaboration.members
	not input.collaboration.datasets[m].matched
}

deny contains sprintf("the column %s may never be output or filtered on", [c]) if {
	input.action == "query.run"
	some c in array.concat(
		array.concat(object.get(query, "group_by", []), object.get(query, "columns", [])),
		object.get(query, "filter_columns", []),
	)
	never_out(c)
}

# A filter selects people just as a group does: one filtered query per value
# is the breakdown, so filters are held to the dimensions' rules.
deny contains sprintf("grouping or filtering by %s is not allowed in this collaboration", [d]) if {
	input.action == "query.run"
	some d in array.concat(object.get(query, "group_by", []), object.get(query, "filter_columns", []))
	not never_out(d)
	not d in effective.allowed_dimensions
}

# Lift releases how many people are exposed or not and converted or not
# (four disjoint noisy counts): a breakdown by both its columns, held to
# the dimensions' rules.
deny contains sprintf("splitting lift by %s is not allowed in this collaboration: lift's exposed and converted columns must be allowed dimensions", [d]) if {
	input.action == "query.run"
	some d in object.get(query, "splits", [])
	not never_out(d)
	not d in effective.allowed_dimensions
}

deny contains sprintf("the metric %s is not allowed in this collaboration", [m]) if {
	input.action == "query.run"
	some m in object.get(query, "metrics", [])
	not m in effective.allowed_metrics
}

deny contains "the query asks for more epsilon than one query may spend" if {
	input.action == "query.run"
	query.epsilon > effective.epsilon_per_query
}

deny contains sprintf("a query spends at least epsilon %v", [effective.epsilon_min_per_query]) if {
	input.action == "query.run"
	not collab.settings.noise_off
	object.get(query, "epsilon", 0) < effective.epsilon_min_per_query
}

deny contains "a query must spend some epsilon" if {
	input.action == "query.run"
	object.get(query, "epsilon", 0) <= 0
	not collab.settings.noise_off
}

deny contains "the collaboration's privacy budget is spent" if {
	input.action == "query.run"
	not collab.settings.noise_off
	object.get(usage, "epsilon_spent", 0) + object.get(query, "epsilon", 0) > effective.epsilon_budget
}

deny contains "the collaboration's delta budget is spent" if {
	input.action == "query.run"
	query.selects_partitions
	object.get(usage, "delta_spent", 0) + effective.delta_per_query > effective.delta_budget
}

deny contains "the daily query limit is reached" if {
	input.action == "query.run"
	effective.max_queries_per_day > 0
	object.get(usage, "queries_today", 0) >= effective.max_queries_per_day
}

# --- the collaboration's own module ----------------------------------------------

deny contains msg if {
	some msg in data.collaboration.deny
	is_string(msg)
}
