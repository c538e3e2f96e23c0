package cleanroom_test

import data.cleanroom

defaults := {
	"min_group_size": 50, "epsilon_per_query": 0.5, "epsilon_min_per_query": 0.01, "epsilon_budget": 5,
	"epsilon_match": 0.1, "delta_per_query": 1e-8, "delta_budget": 1e-6,
	"min_list_size": 1000, "max_list_size": 50000000, "min_upload_difference": 50,
	"max_queries_per_day": 100, "max_matches_per_day": 10, "max_uploads_per_day": 10,
	"allowed_metrics": ["avg", "count", "kmeans", "lift", "match_rate", "roi", "sum"],
	"never_output_columns": ["email", "phone", "maid", "token", "match_key", "row"],
}

matched := {"uploaded": true, "matched": true}

collab := {
	"id": "alliance",
	"members": ["coursely", "fitapp"],
	"settings": {"allowed_dimensions": ["coursely.age_band", "coursely.region", "fitapp.spend", "fitapp.revenue", "coursely.email"]},
	"datasets": {"coursely": matched, "fitapp": matched},
}

analyst := {"id": "ana", "role": "analyst", "partner": "coursely"}

partner := {"id": "coursely", "role": "partner", "partner": "coursely"}

q := {"metrics": ["count"], "group_by": ["coursely.age_band"], "epsilon": 0.1}

inp(principal, action, extra) := object.union(
	{"principal": principal, "action": action, "collaboration": collab, "now_unix": 1000},
	extra,
)

# with_collab replaces the collaboration (object.union would merge into it).
with_collab(x, c) := object.union(object.remove(x, ["collaboration"]), {"collaboration": c})

query_input(query) := inp(analyst, "query.run", {"resource": {"query": query}})

test_query_allowed if {
	d := cleanroom.decision with data.room.defaults as defaults with input as query_input(q)
	d.allow
	d.reasons == []
	d.constraints.min_group_size == 50
	d.constraints.allowed_dimensions == ["coursely.age_band", "coursely.region", "fitapp.revenue", "fitapp.spend"]
}

test_non_member_denied if {
	d := cleanroom.decision with data.room.defaults as defaults with input as inp({"id": "x", "role": "analyst", "partner": "rival"}, "query.run", {"resource": {"query": q}})
	not d.allow
	"only members of the collaboration may act on it" in d.reasons
}

test_auditor_reads_audit_but_never_queries if {
	auditor := {"id": "aud", "role": "auditor", "partner": "coursely"}
	d1 := cleanroom.decision with data.room.defaults as defaults with input as inp(auditor, "budget.read", {})
	d1.allow
	d := cleanroom.decision with data.room.defaults as defaults with input as inp(auditor, "query.run", {"resource": {"query": q}})
	not d.allow
	"auditors read the audit log but never touch data" in d.reasons
}

test_unknown_role_and_action if {
	d := cleanroom.decision with data.room.defaults as defaults with input as inp({"id": "x", "role": "root", "partner": "coursely"}, "query.run", {"resource": {"query": q}})
	"the principal's role is not one the room knows" in d.reasons
	e := cleanroom.decision with data.room.defaults as defaults with input as inp(partner, "data.dump", {})
	"this action is not one the room's policy knows" in e.reasons
}

test_operator_only_registers if {
	op := {"id": "op", "role": "operator", "partner": ""}
	d2 := cleanroom.decision with data.room.defaults as defaults with input as inp(op, "partner.register", {})
	d2.allow
	d3 := cleanroom.decision with data.room.defaults as defaults with input as inp(partner, "partner.register", {})
	not d3.allow
	d := cleanroom.decision with data.room.defaults as defaults with input as inp(op, "query.run", {"resource": {"query": q}})
	"the room's operator does not act on collaborations" in d.reasons
}

test_no_query_before_every_member_matched if {
	c := object.union(object.remove(collab, ["datasets"]), {"datasets": {"coursely": matched, "fitapp": {"uploaded": true}}})
	d := cleanroom.decision with data.room.defaults as defaults with input as with_collab(query_input(q), c)
	"queries wait until every member's list is matched" in d.reasons
}

test_join_columns_never_output if {
	d := cleanroom.decision with data.room.defaults as defaults with input as query_input(object.union(q, {"group_by": ["coursely.email"]}))
	"the column coursely.email may never be output or filtered on" in d.reasons
	e := cleanroom.decision with data.room.defaults as defaults with input as query_input(object.union(q, {"filter_columns": ["fitapp.token"]}))
	"the column fitapp.token may never be output or filtered on" in e.reasons
	f := cleanroom.decision with data.room.defaults as defaults with input as query_input(object.union(q, {"columns": ["token"]}))
	"the column token may never be output or filtered on" in f.reasons
}

# A never-output name is bare (that column of any member) or member.column
# (that member's only).
test_never_output_naming if {
	c := object.union(collab, {"settings": object.union(collab.settings, {"never_output_columns": ["fitapp.spend"]})})
	d := cleanroom.decision with data.room.defaults as defaults with input as with_collab(query_input(object.union(q, {"columns": ["fitapp.spend"]})), c)
	"the column fitapp.spend may never be output or filtered on" in d.reasons
	e := cleanroom.decision with data.room.defaults as defaults with input as with_collab(query_input(object.union(q, {"group_by": ["fitapp.revenue"]})), c)
	e.allow
	not "fitapp.spend" in e.constraints.allowed_dimensions
}

# A filter is a dimension: filtering by a column that may not be grouped by
# is refused, and so is filtering by one a member's requirements exclude.
test_filters_are_dimensions if {
	d := cleanroom.decision with data.room.defaults as defaults with input as query_input(object.union(q, {"filter_columns": ["fitapp.zip"]}))
	"grouping or filtering by fitapp.zip is not allowed in this collaboration" in d.reasons
	c := object.union(collab, {"settings": object.union(collab.settings, {"members": {"fitapp": {"allowed_dimensions": ["coursely.age_band"]}}})})
	e := cleanroom.decision with data.room.defaults as defaults with input as with_collab(query_input(object.union(q, {"filter_columns": ["coursely.region"]})), c)
	"grouping or filtering by coursely.region is not allowed in this collaboration" in e.reasons
	f := cleanroom.decision with data.room.defaults as defaults with input as query_input(object.union(q, {"filter_columns": ["coursely.region"]}))
	f.allow
}

# Lift releases how many people are exposed or not and converted or not: a
# breakdown by both its columns, held to the dimensions' rules.
test_lift_splits_are_dimensions if {
	msg := "is not allowed in this collaboration: lift's exposed and converted columns must be allowed dimensions"
	lift := object.union(q, {"metrics": ["count", "lift"], "columns": ["fitapp.zip", "fitapp.revenue"], "splits": ["fitapp.zip", "fitapp.revenue"]})
	d := cleanroom.decision with data.room.defaults as defaults with input as query_input(lift)
	sprintf("splitting lift by fitapp.zip %s", [msg]) in d.reasons
	not sprintf("splitting lift by fitapp.revenue %s", [msg]) in d.reasons
	converted := object.union(lift, {"columns": ["coursely.region", "fitapp.zip"], "splits": ["coursely.region", "fitapp.zip"]})
	e := cleanroom.decision with data.room.defaults as defaults with input as query_input(converted)
	sprintf("splitting lift by fitapp.zip %s", [msg]) in e.reasons
	c := object.union(collab, {"settings": object.union(collab.settings, {"members": {"fitapp": {"allowed_dimensions": ["coursely.age_band", "fitapp.revenue"]}}})})
	region := object.union(lift, {"columns": ["coursely.region", "fitapp.revenue"], "splits": ["coursely.region", "fitapp.revenue"]})
	f := cleanroom.decision with data.room.defaults as defaults with input as with_collab(query_input(region), c)
	sprintf("splitting lift by coursely.region %s", [msg]) in f.reasons
	g := cleanroom.decision with data.room.defaults as defaults with input as query_input(region)
	g.allow
}

test_no_dimensions_without_a_list if {
	c := object.union(object.remove(collab, ["settings"]), {"settings": {}})
	d := cleanroom.decision with data.room.defaults as defaults with input as with_collab(query_input(q), c)
	"grouping or filtering by coursely.age_band is not allowed in this collaboration" in d.reasons
	e := cleanroom.decision with data.room.defaults as defaults with input as with_collab(query_input(object.remove(q, ["group_by"])), c)
	e.allow
}

test_epsilon_floor if {
	d := cleanroom.decision with data.room.defaults as defaults with input as query_input(object.union(q, {"epsilon": 0.005}))
	"a query spends at least epsilon 0.01" in d.reasons
	e := cleanroom.decision with data.room.defaults as defaults with input as query_input(object.union(q, {"epsilon": 5e-324}))
	"a query spends at least epsilon 0.01" in e.reasons
	c := object.union(collab, {"settings": object.union(collab.settings, {"epsilon_min_per_query": 0.05})})
	f := cleanroom.decision with data.room.defaults as defaults with input as with_collab(query_input(q), c)
	f.allow
	g := cleanroom.decision with data.room.defaults as defaults with input as with_collab(query_input(object.union(q, {"epsilon": 0.02})), c)
	"a query spends at least epsilon 0.05" in g.reasons
}

test_delta_budget if {
	d := cleanroom.decision with data.room.defaults as defaults with input as object.union(query_input(object.union(q, {"selects_partitions": true})), {"usage": {"delta_spent": 9.95e-7}})
	"the collaboration's delta budget is spent" in d.reasons
	e := cleanroom.decision with data.room.defaults as defaults with input as object.union(query_input(q), {"usage": {"delta_spent": 1e-6}})
	e.allow
}

test_match_limits if {
	d := cleanroom.decision with data.room.defaults as defaults with input as object.union(inp(partner, "match.run", {}), {"usage": {"matches_today": 10}})
	"the collaboration's daily limit of match runs is reached" in d.reasons
	e := cleanroom.decision with data.room.defaults as defaults with input as object.union(inp(partner, "match.run", {}), {"usage": {"epsilon_spent": 4.95}})
	"the collaboration's privacy budget is spent" in e.reasons
	f := cleanroom.decision with data.room.defaults as defaults with input as object.union(inp(partner, "match.run", {}), {"usage": {"matches_today": 9, "epsilon_spent": 4.9}})
	f.allow
}

test_upload_limit if {
	d := cleanroom.decision with data.room.defaults as defaults with input as object.union(inp(partner, "dataset.upload", {"resource": {"dataset": {"rows": 5000}}}), {"usage": {"uploads_today": 10}})
	"your daily limit of uploads to this collaboration is reached" in d.reasons
}

test_dimension_and_metric_lists if {
	d := cleanroom.decision with data.room.defaults as defaults with input as query_input(object.union(q, {"group_by": ["coursely.zip"], "metrics": ["median"]}))
	"grouping or filtering by coursely.zip is not allowed in this collaboration" in d.reasons
	"the metric median is not allowed in this collaboration" in d.reasons
}

test_epsilon_per_query_and_budget if {
	d := cleanroom.decision with data.room.defaults as defaults with input as query_input(object.union(q, {"epsilon": 0.9}))
	"the query asks for more epsilon than one query may spend" in d.reasons
	e := cleanroom.decision with data.room.defaults as defaults with input as object.union(query_input(q), {"usage": {"epsilon_spent": 4.95}})
	"the collaboration's privacy budget is spent" in e.reasons
	f := cleanroom.decision with data.room.defaults as defaults with input as object.union(query_input(q), {"usage": {"epsilon_spent": 4.9}})
	f.allow
}

test_daily_limit if {
	d := cleanroom.decision with data.room.defaults as defaults with input as object.union(query_input(q), {"usage": {"queries_today": 100}})
	"the daily query limit is reached" in d.reasons
}

test_list_size if {
	dups := inp(partner, "dataset.upload", {"resource": {"dataset": {"rows": 5000, "distinct": 999}}})
	d4 := cleanroom.decision with data.room.defaults as defaults with input as dups
	"the list has fewer distinct identifiers than the collaboration's minimum of 1000" in d4.reasons
	d5 := cleanroom.decision with data.room.defaults as defaults with input as inp(partner, "dataset.upload", {"resource": {"dataset": {"rows": 1000, "distinct": 1000}}})
	d5.allow
	d6 := cleanroom.decision with data.room.defaults as defaults with input as inp(partner, "dataset.upload", {"resource": {"dataset": {"rows": 10}}})
	"the list has fewer distinct identifiers than the collaboration's minimum of 1000" in d6.reasons
	d7 := cleanroom.decision with data.room.defaults as defaults with input as inp(partner, "dataset.upload", {"resource": {"dataset": {"rows": 0}}})
	d7.allow
}

test_differencing_attack if {
	near := inp(partner, "dataset.upload", {"resource": {"dataset": {"rows": 5000, "difference_from_previous": 49}}})
	d := cleanroom.decision with data.room.defaults as defaults with input as near
	"the list differs from your previous one by fewer than 50 identifiers, which could single people out" in d.reasons
	d6 := cleanroom.decision with data.room.defaults as defaults with input as inp(partner, "dataset.upload", {"resource": {"dataset": {"rows": 5000, "difference_from_previous": 50}}})
	d6.allow
	d7 := cleanroom.decision with data.room.defaults as defaults with input as inp(partner, "dataset.upload", {"resource": {"dataset": {"rows": 5000, "difference_from_previous": 0}}})
	d7.allow
}

test_analyst_cannot_upload if {
	d := cleanroom.decision with data.room.defaults as defaults with input as inp(analyst, "dataset.upload", {"resource": {"dataset": {"rows": 5000}}})
	"only a partner itself may do this, not its analysts" in d.reasons
}

# A member discards its own upload in progress: a partner's right, not its
# analysts', auditors' or outsiders', and one it keeps after a revocation or
# the expiry (the room deletes the data then anyway).
test_discard if {
	d := cleanroom.decision with data.room.defaults as defaults with input as inp(partner, "dataset.discard", {})
	d.allow
	a := cleanroom.decision with data.room.defaults as defaults with input as inp(analyst, "dataset.discard", {})
	"only a partner itself may do this, not its analysts" in a.reasons
	u := cleanroom.decision with data.room.defaults as defaults with input as inp({"id": "aud", "role": "auditor", "partner": "coursely"}, "dataset.discard", {})
	"auditors read the audit log but never touch data" in u.reasons
	r := cleanroom.decision with data.room.defaults as defaults with input as with_collab(inp(partner, "dataset.discard", {}), object.union(collab, {"revoked": true}))
	r.allow
	o := cleanroom.decision with data.room.defaults as defaults with input as with_collab(inp(partner, "dataset.discard", {}), object.union(collab, {"members": ["fitapp", "other"]}))
	"only members of the collaboration may act on it" in o.reasons
}

test_match_waits_for_uploads if {
	c := object.union(object.remove(collab, ["datasets"]), {"datasets": {"coursely": {"uploaded": true}}})
	d := cleanroom.decision with data.room.defaults as defaults with input as with_collab(inp(partner, "match.run", {}), c)
	"member fitapp has not uploaded its list yet" in d.reasons
}

test_revoked_and_expired if {
	r := cleanroom.decision with data.room.defaults as defaults with input as with_collab(query_input(q), object.union(collab, {"revoked": true}))
	"a member revoked this collaboration: it no longer touches data" in r.reasons
	e := cleanroom.decision with data.room.defaults as defaults with input as with_collab(query_input(q), object.union(collab, {"expires_unix": 1000}))
	"the collaboration has expired" in e.reasons
	d8 := cleanroom.decision with data.room.defaults as defaults with input as with_collab(query_input(q), object.union(collab, {"expires_unix": 1001}))
	d8.allow
}

test_members_strictest_wins if {
	c := object.union(collab, {"settings": object.union(collab.settings, {"members": {
		"coursely": {"min_group_size": 100, "epsilon_per_query": 0.3},
		"fitapp": {"min_group_size": 75, "epsilon_per_query": 0.2, "allowed_dimensions": ["coursely.age_band", "coursely.region"]},
	}})})
	d := cleanroom.decision with data.room.defaults as defaults with input as with_collab(query_input(q), c)
	d.constraints.min_group_size == 100
	d.constraints.epsilon_per_query == 0.2
	d.constraints.allowed_dimensions == ["coursely.age_band", "coursely.region"]
}

test_collaboration_cannot_loosen_defaults if {
	c := object.union(collab, {"settings": object.union(collab.settings, {"min_group_size": 5, "min_list_size": 10, "never_output_columns": []})})
	d := cleanroom.decision with data.room.defaults as defaults with input as with_collab(query_input(q), c)
	d.constraints.min_group_size == 50
	d.constraints.min_list_size == 1000
	"email" in d.constraints.never_output_columns
}

test_collaboration_module_adds_denials_and_constraints if {
	d := cleanroom.decision with data.room.defaults as defaults with input as query_input(q)
		with data.collaboration.deny as {"no queries on weekends"}
		with data.collaboration.constraints as {"min_group_size": 200}
	not d.allow
	d.reasons == ["no queries on weekends"]
	d.constraints.min_group_size == 200
}

test_create_needs_two_members if {
	c := object.union(collab, {"members": ["coursely"]})
	d := cleanroom.decision with data.room.defaults as defaults with input as with_collab(inp(partner, "collaboration.create", {}), c)
	"a collaboration needs at least two members" in d.reasons
}

test_audit_export_auditors_and_operator_only if {
	auditor := {"id": "aud", "role": "auditor", "partner": "coursely"}
	room_auditor := {"id": "regulator", "role": "room-auditor", "partner": "regulator"}
	operator := {"id": "operator", "role": "operator"}
	allowed := {p |
		some p in [auditor, room_auditor, operator, analyst, partner]
		d := cleanroom.decision with data.room.defaults as defaults
			with input as {"principal": p, "action": "audit.export", "now_unix": 1000}
		d.allow
	}
	allowed == {auditor, room_auditor, operator}
}

# A room-wide auditor is in no collaboration: it reads none, and touches no
# data even if a partner's id were given to it.
test_room_auditor_never_touches_collaborations if {
	room_auditor := {"id": "regulator", "role": "room-auditor", "partner": "regulator"}
	d := cleanroom.decision with data.room.defaults as defaults with input as inp(room_auditor, "collaboration.read", {})
	not d.allow
	"only members of the collaboration may act on it" in d.reasons
	inside := {"id": "regulator", "role": "room-auditor", "partner": "coursely"}
	e := cleanroom.decision with data.room.defaults as defaults with input as inp(inside, "query.run", {"resource": {"query": q}})
	"auditors read the audit log but never touch data" in e.reasons
}

test_listing_collaborations if {
	allowed := {p |
		some p in [analyst, partner, {"id": "aud", "role": "auditor", "partner": "coursely"}, {"id": "op", "role": "operator"}]
		d := cleanroom.decision with data.room.defaults as defaults
			with input as {"principal": p, "action": "collaboration.list", "now_unix": 1000}
		d.allow
	}
	count(allowed) == 3
	not {"id": "op", "role": "operator"} in allowed
}

# A module narrows the dimensions the settings allow, and never opens one
# the members did not agree to in the settings.
test_module_never_opens_dimensions if {
	c := object.union(object.remove(collab, ["settings"]), {"settings": {}})
	d := cleanroom.decision with data.room.defaults as defaults with input as with_collab(query_input(q), c)
		with data.collaboration.constraints as {"allowed_dimensions": ["coursely.age_band"]}
	"grouping or filtering by coursely.age_band is not allowed in this collaboration" in d.reasons
	e := cleanroom.decision with data.room.defaults as defaults with input as query_input(object.union(q, {"group_by": ["coursely.region"]}))
		with data.collaboration.constraints as {"allowed_dimensions": ["coursely.age_band"]}
	"grouping or filtering by coursely.region is not allowed in this collaboration" in e.reasons
	f := cleanroom.decision with data.room.defaults as defaults with input as query_input(q)
		with data.collaboration.constraints as {"allowed_dimensions": ["coursely.age_band", "fitapp.zip"]}
	f.allow
	not "fitapp.zip" in f.constraints.allowed_dimensions
}
