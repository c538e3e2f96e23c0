package policy

// Action is what a principal asks the room to do: the policy decides it,
// and the audit log records it under this name.
type Action string

// The actions the policy decides. The default bundle knows exactly these
// (TestActionsKnownToRego holds the two lists together).
const (
	ActionRoomRead            Action = "room.read"
	ActionPrincipalSelf       Action = "principal.self"
	ActionPartnerRegister     Action = "partner.register"
	ActionAuditExport         Action = "audit.export"
	ActionCollaborationList   Action = "collaboration.list"
	ActionCollaborationCreate Action = "collaboration.create"
	ActionCollaborationRead   Action = "collaboration.read"
	ActionCollaborationAccept Action = "collaboration.accept"
	ActionCollaborationRevoke Action = "collaboration.revoke"
	ActionSecretDeliver       Action = "secret.deliver"
	ActionDatasetUpload       Action = "dataset.upload"
	ActionDatasetReencrypt    Action = "dataset.reencrypt"
	ActionDatasetDiscard      Action = "dataset.discard"
	ActionMatchRun            Action = "match.run"
	ActionQueryRun            Action = "query.run"
	ActionBudgetRead          Action = "budget.read"
	ActionPolicyPropose       Action = "policy.propose"
	ActionPolicyApprove       Action = "policy.approve"
	ActionModelTrain          Action = "model.train"
	ActionAudienceActivate    Action = "audience.activate"
)

// Actions lists every action the policy decides.
func Actions() []Action {
	return []Action{
		ActionRoomRead, ActionPrincipalSelf, ActionPartnerRegister, ActionAuditExport, ActionCollaborationList,
		ActionCollaborationCreate, ActionCollaborationRead, ActionCollaborationAccept, ActionCollaborationRevoke,
		ActionSecretDeliver, ActionDatasetUpload, ActionDatasetReencrypt, ActionDatasetDiscard, ActionMatchRun,
		ActionQueryRun, ActionBudgetRead, ActionPolicyPropose, ActionPolicyApprove, ActionModelTrain, ActionAudienceActivate,
	}
}
