package gateway

import (
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/store"
)

// fillMessage records in m, the call's entry in the message log, how the call was verified, what it concerned
// and how it was answered.
func fillMessage(m *store.Message, o outcome) {
	m.Verification = o.verdict
	m.Activity = o.keys.Activity
	m.OrderID = o.keys.OrderID
	m.OrderLineID = o.keys.OrderLineID
	m.BusinessID = o.keys.BusinessID
	m.InstanceIDs = o.keys.InstanceIDs
	m.Scene = o.keys.Scene
	m.Status = o.keys.Status
	m.TestFlag = o.keys.TestFlag
	m.ResultCode = o.resp.ResultCode
	m.ResultMsg = o.resp.ResultMsg
	m.ErrorDetail = o.detail
	m.Failed = !koogallery.Succeeded(o.resp.ResultCode)
}
