package cleanroom_test

import data.cleanroom

room_activation := {"min_audience": 1000, "max_per_day": 5, "max_total": 50}

model_shape := {"label": "fitapp.revenue", "features": ["coursely.age_band", "coursely.region"], "epsilon": 0.3}

model_input(shape) := inp(analyst, "model.train", {"resource": {"model": shape}})

test_model_allowed if {
	d := cleanroom.decision with data.room.defaults as object.union(defaults, {"allowed_metrics": ["count", "model"]}) with input as model_input(model_shape)
	d.allow
}

test_model_needs_the_metric if {
	d := cleanroom.decision with data.room.defaults as defaults with input as model_input(model_shape)
	not d.allow
	"the metric model is not allowed in this collaboration" in d.reasons
}

test_model_features_are_dimensions if {
	shape := object.union(model_shape, {"features": ["coursely.age_band", "coursely.income", "coursely.email"]})
	d := cleanroom.decision with data.room.defaults as object.union(defaults, {"allowed_metrics": ["model"]}) with input as model_input(shape)
	not d.allow
	"a model's feature coursely.income must be an allowed dimension in this collaboration" in d.reasons
	"the column coursely.email may never be output or filtered on" in d.reasons
}

test_model_label_never_output if {
	shape := object.union(model_shape, {"label": "fitapp.phone"})
	d := cleanroom.decision with data.room.defaults as object.union(defaults, {"allowed_metrics": ["model"]}) with input as model_input(shape)
	"the column fitapp.phone may never be output or filtered on" in d.reasons
}

# A model's leaves count the people whose label is true: the label's
# column is held to the dimensions' rules, as a filter's is.
test_model_label_is_a_dimension if {
	shape := object.union(model_shape, {"label": "fitapp.zip"})
	d := cleanroom.decision with data.room.defaults as object.union(defaults, {"allowed_metrics": ["model"]}) with input as model_input(shape)
	not d.allow
	"a model's label fitapp.zip must be an allowed dimension in this collaboration" in d.reasons
	phone := cleanroom.decision with data.room.defaults as object.union(defaults, {"allowed_metrics": ["model"]}) with input as model_input(object.union(model_shape, {"label": "fitapp.phone"}))
	not "a model's label fitapp.phone must be an allowed dimension in this collaboration" in phone.reasons
}

test_model_epsilon_and_budget if {
	rd := object.union(defaults, {"allowed_metrics": ["model"]})
	big := cleanroom.decision with data.room.defaults as rd with input as model_input(object.union(model_shape, {"epsilon": 0.9}))
	"the model asks for more epsilon than one query may spend" in big.reasons
	tiny := cleanroom.decision with data.room.defaults as rd with input as model_input(object.union(model_shape, {"epsilon": 0.001}))
	"a model spends at least epsilon 0.01" in tiny.reasons
	none := cleanroom.decision with data.room.defaults as rd with input as model_input(object.union(model_shape, {"epsilon": 0}))
	"a model must spend some epsilon" in none.reasons
	spent := cleanroom.decision with data.room.defaults as rd
		with input as object.union(model_input(model_shape), {"usage": {"epsilon_spent": 4.9}})
	"the collaboration's privacy budget is spent" in spent.reasons
}

activation_collab(activation) := object.union(collab, {"settings": object.union(collab.settings, {"activation": activation})})

activate_input(principal, c, filters, usage_now) := with_collab(
	inp(principal, "audience.activate", {"resource": {"activation": {"filter_columns": filters}}, "usage": usage_now}),
	c,
)

test_activation_needs_consent if {
	d := cleanroom.decision with data.room.defaults as defaults with data.room.activation as room_activation
		with input as activate_input(partner, collab, [], {})
	not d.allow
	"this collaboration's settings do not allow activation" in d.reasons
}

test_activation_allowed_member if {
	c := activation_collab({"members": ["coursely"]})
	d := cleanroom.decision with data.room.defaults as defaults with data.room.activation as room_activation
		with input as activate_input(partner, c, ["coursely.age_band"], {})
	d.allow
}

test_activation_other_member_refused if {
	c := activation_collab({"members": ["fitapp"]})
	d := cleanroom.decision with data.room.defaults as defaults with data.room.activation as room_activation
		with input as activate_input(partner, c, [], {})
	"the collaboration's settings do not let coursely receive audiences" in d.reasons
}

test_activation_partner_only if {
	c := activation_collab({"members": ["coursely"]})
	d := cleanroom.decision with data.room.defaults as defaults with data.room.activation as room_activation
		with input as activate_input(analyst, c, [], {})
	"only a partner itself may do this, not its analysts" in d.reasons
}

test_activation_filters_are_dimensions if {
	c := activation_collab({"members": ["coursely"]})
	d := cleanroom.decision with data.room.defaults as defaults with data.room.activation as room_activation
		with input as activate_input(partner, c, ["fitapp.plan", "coursely.email"], {})
	"grouping or filtering by fitapp.plan is not allowed in this collaboration" in d.reasons
	"the column coursely.email may never be output or filtered on" in d.reasons
}

test_activation_limits if {
	c := activation_collab({"members": ["coursely"], "max_per_day": 2})
	day := cleanroom.decision with data.room.defaults as defaults with data.room.activation as room_activation
		with input as activate_input(partner, c, [], {"activations_today": 2, "activations": 2})
	"your daily limit of activations is reached" in day.reasons
	total := cleanroom.decision with data.room.defaults as defaults with data.room.activation as room_activation
		with input as activate_input(partner, c, [], {"activations_today": 0, "activations": 50})
	"your limit of activations in this collaboration is reached" in total.reasons
	ok := cleanroom.decision with data.room.defaults as defaults with data.room.activation as room_activation
		with input as activate_input(partner, c, [], {"activations_today": 1, "activations": 49})
	ok.allow
}

test_activation_refused_once_revoked if {
	c := object.union(activation_collab({"members": ["coursely"]}), {"revoked": true})
	d := cleanroom.decision with data.room.defaults as defaults with data.room.activation as room_activation
		with input as activate_input(partner, c, [], {})
	"a member revoked this collaboration: it no longer touches data" in d.reasons
}
