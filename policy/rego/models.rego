# METADATA
# title: models and activation
# description: >-
#   Rules for training a lookalike model (model.train), a differentially
#   private release charged like a query, and for activation
#   (audience.activate), an exact release that only the settings' activation
#   block, which every member accepted, allows.
package cleanroom

# --- models ----------------------------------------------------------------------

model := input.resource.model

deny contains "models wait until every member's list is matched" if {
	input.action == "model.train"
	some m in input.collaboration.members
	not input.collaboration.datasets[m].matched
}

deny contains sprintf("the column %s may never be output or filtered on", [c]) if {
	input.action == "model.train"
	some c in array.concat(object.get(model, "features", []), [object.get(model, "label", "")])
	never_out(c)
}

# A tree's path is a conjunction of filters on its features, and its leaves
# are groups over them: features are held to the dimensions' rules.
deny contains sprintf("a model's feature %s must be an allowed dimension in this collaboration", [d]) if {
	input.action == "model.train"
	some d in object.get(model, "features", [])
	not never_out(d)
	not d in effective.allowed_dimensions
}

# A tree's leaves release noisy counts of the people whose label is true
# and false: the label's condition is a filter, held to the same rules.
deny contains sprintf("a model's label %s must be an allowed dimension in this collaboration", [model.label]) if {
	input.action == "model.train"
	not never_out(model.label)
	not model.label in effective.allowed_dimensions
}

deny contains "the metric model is not allowed in this collaboration" if {
	input.action == "model.train"
	not "model" in effective.allowed_metrics
}

deny contains "the model asks for more epsilon than one query may spend" if {
	input.action == "model.train"
	model.epsilon > effective.epsilon_per_query
}

deny contains sprintf("a model spends at least epsilon %v", [effective.epsilon_min_per_query]) if {
	input.action == "model.train"
	not collab.settings.noise_off
	object.get(model, "epsilon", 0) > 0
	object.get(model, "epsilon", 0) < effective.epsilon_min_per_query
}

deny contains "a model must spend some epsilon" if {
	input.action == "model.train"
	object.get(model, "epsilon", 0) <= 0
	not collab.settings.noise_off
}

deny contains "the collaboration's privacy budget is spent" if {
	input.action == "model.train"
	not collab.settings.noise_off
	object.get(usage, "epsilon_spent", 0) + object.get(model, "epsilon", 0) > effective.epsilon_budget
}

deny contains "the daily query limit is reached" if {
	input.action == "model.train"
	effective.max_queries_per_day > 0
	object.get(usage, "queries_today", 0) >= effective.max_queries_per_day
}

# --- activation ------------------------------------------------------------------

activation := object.get(settings, "activation", null)

# activation_limit(key) is the settings' limit, or the room's where the
# settings leave it unset (settings can only tighten the room's).
activation_limit(key) := v if {
	v := activation[key]
	v > 0
} else := data.room.activation[key]

deny contains "audiences wait until every member's list is matched" if {
	input.action == "audience.activate"
	some m in input.collaboration.members
	not input.collaboration.datasets[m].matched
}

deny contains "this collaboration's settings do not allow activation" if {
	input.action == "audience.activate"
	activation == null
}

deny contains sprintf("the collaboration's settings do not let %s receive audiences", [input.principal.partner]) if {
	input.action == "audience.activate"
	activation != null
	not input.principal.partner in object.get(activation, "members", [])
}

deny contains sprintf("the column %s may never be output or filtered on", [c]) if {
	input.action == "audience.activate"
	some c in object.get(input.resource.activation, "filter_columns", [])
	never_out(c)
}

# A segment's filters select people as a query's do: the same allow-list.
deny contains sprintf("grouping or filtering by %s is not allowed in this collaboration", [d]) if {
	input.action == "audience.activate"
	some d in object.get(input.resource.activation, "filter_columns", [])
	not never_out(d)
	not d in effective.allowed_dimensions
}

deny contains "your daily limit of activations is reached" if {
	input.action == "audience.activate"
	activation != null
	object.get(usage, "activations_today", 0) >= activation_limit("max_per_day")
}

deny contains "your limit of activations in this collaboration is reached" if {
	input.action == "audience.activate"
	activation != null
	object.get(usage, "activations", 0) >= activation_limit("max_total")
}
