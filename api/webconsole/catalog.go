package webconsole

import "fmt"

// Languages the console speaks; zh-CN is the default, as in the marketplace's seller center.
const (
	LangZH = "zh-CN"
	LangEN = "en"
)

// Catalog is one language's messages. A value is handed to each page; there is no process-wide current language.
type Catalog struct {
	Lang string
	m    map[string]string
}

// T returns the message for key; a key missing from the catalog shows as itself in brackets, which the catalog
// tests make impossible for every key the pages use.
func (c Catalog) T(key string) string {
	if v, ok := c.m[key]; ok {
		return v
	}
	return "[" + key + "]"
}

// Has reports whether the catalog has key.
func (c Catalog) Has(key string) bool { _, ok := c.m[key]; return ok }

// Keys lists the catalog's keys (for tests).
func (c Catalog) Keys() []string {
	out := make([]string, 0, len(c.m))
	for k := range c.m {
		out = append(out, k)
	}
	return out
}

// Catalogs returns fresh catalogs of every language, by language tag.
func Catalogs() map[string]Catalog {
	zh, en := map[string]string{}, map[string]string{}
	for _, e := range messages() {
		if _, dup := zh[e[0]]; dup {
			panic(fmt.Sprintf("web console catalog: key %s given twice", e[0]))
		}
		zh[e[0]], en[e[0]] = e[1], e[2]
	}
	return map[string]Catalog{LangZH: {Lang: LangZH, m: zh}, LangEN: {Lang: LangEN, m: en}}
}

// messages are key, zh-CN, en. The marketplace's own words are kept: 服务监管 (service supervision), 生产接口消息
// (production interface messages), 账单 (bills), 对账 (reconciliation), and the bill's states (出账 / 会签 / 申付 / 支付).
func messages() [][3]string {
	return [][3]string{
		{"app.title", "kooflow 卖家控制台", "kooflow seller console"},
		{"app.skip", "跳到正文", "Skip to content"},
		{"nav.label", "主导航", "Main navigation"},
		{"nav.instances", "实例", "Instances"},
		{"nav.supervision", "服务监管", "Service supervision (服务监管)"},
		{"nav.refunds", "退款申请", "Refund requests"},
		{"nav.parked", "挂起的步骤", "Parked steps"},
		{"nav.messages", "生产接口消息", "Production interface messages (生产接口消息)"},
		{"nav.alerts", "告警", "Alerts"},
		{"nav.bills", "账单", "Bills (账单)"},
		{"nav.settings", "配置", "Settings"},
		{"nav.signout", "退出登录", "Sign out"},
		{"lang.label", "语言", "Language"},
		{"lang.switch", "切换", "Switch"},

		{"signin.title", "登录", "Sign in"},
		{"signin.token", "控制台令牌", "Console token"},
		{"signin.hint", "使用 KOOFLOW_CONSOLE_TOKENS 中配置的令牌登录；令牌的权限范围决定可见的页面和可做的操作。", "Sign in with a token from KOOFLOW_CONSOLE_TOKENS; its scopes decide which pages you see and what you may do."},
		{"signin.submit", "登录", "Sign in"},
		{"signin.failed", "令牌无效，登录失败。", "Sign-in failed: the token is not valid."},

		{"err.signedOut", "会话已过期或未登录，请重新登录。", "You are signed out or your session expired; sign in again."},
		{"err.scope", "令牌 %q 缺少此页面或操作所需的权限范围 %q。请在 KOOFLOW_CONSOLE_TOKENS 中授予（name:token:scope+scope）。", "The token %q lacks the scope %q this page or action needs. Grant it in KOOFLOW_CONSOLE_TOKENS (name:token:scope+scope)."},
		{"err.csrf", "表单已失效（CSRF 校验失败），请刷新页面后重试。", "The form has expired (CSRF check failed); reload the page and try again."},
		{"err.internal", "服务器出错，请查看服务器日志中的请求 %s。", "Something failed on the server; see the server log for request %s."},
		{"err.noKeys", "未配置数据密钥（KOOFLOW_DATA_KEYS），无法建立会话。", "No data keys are configured (KOOFLOW_DATA_KEYS), so no session can be opened."},
		{"err.badLink", "登录链接无效、已过期或已使用。", "The sign-in link is not valid, has expired or was already used."},
		{"err.lang", "不支持的语言。", "Unsupported language."},
		{"err.amount", "金额格式不正确，例如 30.50。", "The amount is not a number such as 30.50."},
		{"err.skipReason", "跳过步骤时必须填写原因。", "Give a reason to skip a step."},
		{"err.tooLong", "输入过长（最多 64 个字符）", "too long (at most 64 characters)"},
		{"err.filter", "筛选条件无效", "Invalid filter"},
		{"err.cursor", "分页位置无效，请从第一页开始。", "The page position is not valid; start from the first page."},
		{"err.messageID", "没有这条消息。", "No such message."},
		{"error.back", "返回实例列表", "Back to instances"},
		{"error.backMessages", "返回消息列表", "Back to the message log"},

		{"f.orderId", "订单号", "Order ID"},
		{"f.instanceId", "实例 ID", "Instance ID"},
		{"f.customerId", "客户 ID", "Customer ID"},
		{"f.product", "产品 ID", "Product ID"},
		{"f.lifecycle", "实例状态", "Lifecycle"},
		{"f.supervision", "服务监管状态", "Supervision"},
		{"f.parked", "挂起", "Parked"},
		{"f.any", "全部", "Any"},
		{"f.search", "查询", "Search"},
		{"yes", "是", "yes"},
		{"no", "否", "no"},
		{"empty", "暂无数据", "Nothing here"},
		{"page.next", "下一页", "Next page"},
		{"parked", "已挂起", "Parked"},
		{"test", "拨测", "Test"},
		{"scope.none", "无操作权限", "No permission to act"},
		{"queue.more", "查看全部（实例列表，可翻页）", "See all (the instance list, paged)"},
		{"instances.noSuchID", "没有实例 %s。", "No instance %s."},

		{"col.instance", "实例 ID", "Instance"},
		{"col.order", "订单号", "Order"},
		{"col.customer", "客户 ID", "Customer"},
		{"col.product", "产品", "Product"},
		{"col.lifecycle", "实例状态", "Lifecycle"},
		{"col.supervision", "服务监管", "Supervision"},
		{"col.expire", "到期时间", "Expires"},
		{"col.updated", "更新时间", "Updated"},
		{"col.type", "类型", "Type"},
		{"col.sku", "规格", "SKU"},
		{"col.paid", "实付金额（元）", "Paid (yuan)"},
		{"col.list", "原价（元）", "List (yuan)"},
		{"col.effective", "生效时间", "Effective"},
		{"col.refund", "退款单", "Refund"},
		{"col.status", "状态", "Status"},
		{"col.requested", "申请金额（元）", "Requested (yuan)"},
		{"col.approved", "同意金额（元）", "Approved (yuan)"},
		{"col.by", "申请人", "Requested by"},
		{"col.at", "时间", "Time"},
		{"col.decision", "处理", "Decision"},
		{"col.action", "操作", "Action"},
		{"col.reason", "原因", "Reason"},
		{"col.step", "步骤", "Step"},

		{"lc.PROVISIONING", "开通中", "Provisioning"},
		{"lc.ACTIVE", "正常", "Active"},
		{"lc.FROZEN", "已冻结", "Frozen"},
		{"lc.RELEASED", "已释放", "Released"},
		{"sv.UNKNOWN", "未知", "Unknown"},
		{"sv.NOT_INVOLVED", "不涉及", "Not involved"},
		{"sv.AWAITING_REQUIREMENT", "待客户提交需求", "Awaiting the customer's requirement"},
		{"sv.AWAITING_CONFIRMATION", "待确认需求", "Requirement to confirm"},
		{"sv.IN_SERVICE", "服务中（待交付）", "In service (to deliver)"},
		{"sv.AWAITING_ACCEPTANCE", "待客户验收", "Awaiting acceptance"},
		{"sv.COMPLETED", "已验收", "Completed"},
		{"rf.PENDING", "待处理", "Pending"},
		{"rf.APPROVED", "已同意", "Approved"},
		{"rf.REJECTED", "已拒绝", "Rejected"},
		{"rf.CANCELLED", "已取消", "Cancelled"},
		{"bs.draft", "计算中", "Draft"},
		{"bs.final", "已出账", "Final"},
		{"bs.carried_forward", "未达起结金额，结转下期", "Carried forward"},
		{"pt.general", "通用商品", "General"},
		{"pt.joint-operation", "联营商品", "Joint operation"},

		{"inst.state", "实例状态", "State"},
		{"inst.provisioned", "开通时间", "Provisioned"},
		{"inst.appInfo", "访问信息", "Access data"},
		{"inst.passwordSet", "已设置初始密码（不显示）", "initial password set, not shown"},
		{"inst.workflow", "工作流", "Workflow"},
		{"inst.orders", "订单", "Orders"},
		{"inst.refunds", "退款", "Refunds"},
		{"inst.timeline", "时间线", "Timeline"},
		{"inst.kit", "联营 Kit 租户", "Kit tenants"},
		{"inst.kitUsers", "Kit 用户", "Kit users"},
		{"inst.parkings", "挂起记录", "Parked steps so far"},

		{"act.confirm", "确认需求", "Confirm requirement"},
		{"act.reject", "驳回需求", "Reject requirement"},
		{"act.note", "说明", "Note"},
		{"act.deliver", "标记已交付", "Mark delivered"},
		{"act.amount", "金额（元）", "Amount (yuan)"},
		{"act.amountFull", "全额", "full"},
		{"act.approve", "同意退款", "Approve refund"},
		{"act.rejectRefund", "拒绝退款", "Reject refund"},
		{"act.resume", "重试", "Resume"},
		{"act.skip", "跳过", "Skip"},
		{"act.reason", "原因", "Reason"},
		{"refund.fullOnly", "仅可全额", "full only"},
		{"done.confirmRequirement", "已确认需求。", "Requirement confirmed."},
		{"done.rejectRequirement", "已驳回需求。", "Requirement rejected."},
		{"done.completeService", "已标记交付，等待客户验收。", "Marked delivered; waiting for the customer's acceptance."},
		{"done.submitRequirement", "已提交需求。", "Requirement submitted."},
		{"done.accept", "已验收。", "Accepted."},
		{"done.refund-approve", "已同意退款。", "Refund approved."},
		{"done.refund-reject", "已拒绝退款。", "Refund rejected."},
		{"done.operator-resume", "已重试挂起的步骤。", "The parked step was resumed."},
		{"done.operator-skip", "已跳过挂起的步骤。", "The parked step was skipped."},

		{"msg.failedOnly", "只看失败的调用", "Failed calls only"},
		{"msg.activity", "接口", "Activity"},
		{"msg.result", "结果码", "Result"},
		{"msg.verification", "验签", "Verification"},
		{"msg.latency", "耗时", "Latency"},
		{"msg.failed", "失败", "failed"},
		{"msg.error", "错误详情", "Error detail"},
		{"msg.remote", "来源地址", "Source address"},
		{"msg.request", "请求", "Request"},
		{"msg.response", "应答（已隐去密钥和密码）", "Answer (secrets redacted)"},
		{"msg.query", "查询参数", "Query"},
		{"msg.truncated", "验签失败的请求只保留前 1 KiB", "only the first 1 KiB of an unverified call is kept"},
		{"msg.headers", "请求头（已隐去凭据）", "Headers (credentials redacted)"},

		{"alerts.open", "未解决", "Open"},
		{"alerts.resolved", "已解决", "Resolved"},
		{"alerts.all", "全部", "All"},
		{"alerts.kind", "类型", "Kind"},
		{"alerts.message", "内容", "Message"},

		{"bill.period", "账期", "Period"},
		{"bill.type", "商品类型", "Product type"},
		{"bill.lines", "明细数", "Lines"},
		{"bill.revenue", "销售收入（元）", "Revenue (yuan)"},
		{"bill.fee", "平台费（元）", "Platform fee (yuan)"},
		{"bill.settlement", "伙伴结算金额（元）", "Settlement (yuan)"},
		{"bill.due", "应结金额（元）", "Amount due (yuan)"},
		{"bill.finalized", "出账时间", "Finalized"},
		{"bill.range", "账期范围", "Period"},
		{"bill.adjustments", "调账", "Adjustments"},
		{"bill.threshold", "起结金额（元）", "Threshold (yuan)"},
		{"bill.hash", "内容摘要", "Content hash"},
		{"bill.csv", "下载 CSV", "Download CSV"},
		{"bill.xlsx", "下载 Excel（XLSX）", "Download Excel (XLSX)"},
		{"bill.draft", "账单计算中，出账后可下载。", "The bill is being computed; download it once it is final."},
		{"bill.lineList", "账单明细", "Bill lines"},
		{"bill.rate", "费率", "Rate"},
		{"bill.explain", "查询订单的结算情况", "Explain an order's settlement"},
		{"bill.explainGo", "查询", "Explain"},
		{"bill.settledIn", "已结算于", "Settled in"},
		{"bill.role", "账期角色", "Role"},
		{"bill.eligible", "可结算", "Eligible"},

		{"nav.recon", "对账", "Reconciliation (对账)"},
		{"bs.missing", "kooflow 尚无此账单", "No kooflow bill"},
		{"recon.receivables", "应收账款（平台欠款）", "Receivables: what the marketplace owes"},
		{"recon.upload", "导入详单", "Import a bill detail"},
		{"recon.uploadHint", "上传从卖家中心账单管理导出的详单（详单导出，CSV 或 XLSX），导入后与 kooflow 的账单逐行对账。同一文件只导入一次。", "Upload the bill detail exported from the seller center's bill management (详单导出, CSV or XLSX); it is compared line by line with kooflow's bill. The same file is imported once."},
		{"recon.maxSize", "文件最大 %d MiB。", "At most %d MiB."},
		{"recon.tooLarge", "文件超过 %d MiB，未导入。", "The file is larger than %d MiB; nothing was imported."},
		{"recon.period", "账期（YYYY-MM）", "Period (YYYY-MM)"},
		{"recon.file", "详单文件", "Bill-detail file"},
		{"recon.uploadGo", "导入并对账", "Import and reconcile"},
		{"recon.noFile", "请选择要导入的详单文件。", "Choose the bill-detail file to import."},
		{"recon.refused", "未导入：", "Nothing was imported:"},
		{"recon.noDiff", "没有这次对账。", "No such reconciliation."},
		{"recon.diffs", "对账结果", "Reconciliations"},
		{"recon.diff", "对账", "Reconciliation"},
		{"recon.imports", "已导入的详单", "Imported bill details"},
		{"recon.matched", "一致", "Matched"},
		{"recon.explained", "差异已说明", "Explained differences"},
		{"recon.unexplained", "差异未说明", "Unexplained differences"},
		{"recon.marketTotal", "平台详单结算金额（元）", "Marketplace settlement (yuan)"},
		{"recon.kooflowTotal", "kooflow 账单结算金额（元）", "kooflow settlement (yuan)"},
		{"recon.marketAmount", "平台金额（元）", "Marketplace (yuan)"},
		{"recon.kooflowAmount", "kooflow 金额（元）", "kooflow (yuan)"},
		{"recon.difference", "差额（元）", "Difference (yuan)"},
		{"recon.kind", "差异类型", "Kind"},
		{"recon.reason", "kooflow 的说明", "kooflow's reason"},
		{"recon.noDifferences", "没有差异", "No differences"},
		{"recon.billStatus", "详单中的账单状态", "Bill status in the export"},
		{"recon.importedBy", "操作人", "By"},
		{"recon.billState", "平台账单状态", "Marketplace bill state"},
		{"recon.billStateGo", "查看账单状态、发票和回款", "See the bill's state, invoice and payments"},
		{"recon.noState", "未记录", "not recorded"},
		{"recon.billed", "应收金额（元）", "Billed (yuan)"},
		{"recon.from.marketplace", "平台详单", "the marketplace's bill detail"},
		{"recon.from.kooflow", "kooflow 账单，尚未导入详单", "kooflow's bill; no bill detail imported yet"},
		{"recon.billDate", "出账日（应收起始日）", "Bill date (owed since)"},
		{"recon.expectedPayment", "预计付款日", "Payment expected on"},
		{"recon.noInvoice", "尚未开票", "no invoice yet"},
		{"recon.received", "已回款（元）", "Received (yuan)"},
		{"recon.outstanding", "未回款（元）", "Outstanding (yuan)"},
		{"recon.overdue", "逾期未付", "Overdue"},
		{"recon.short", "少付", "Short"},
		{"recon.stages", "平台账单流程：出账 → 会签（待会签 / 会签中 / 会签驳回）→ 申付（待申付 / 申付单创建失败 / 申付审核 / 申付处理中）→ 支付。开票后约 6 个工作日付款。", "The marketplace's bill moves: billed (出账) → countersign (会签: pending, in progress, rejected) → payment application (申付: pending, creation failed, in review, processing) → paid (支付). Payment comes about 6 working days after the invoice."},
		{"recon.move", "更新账单状态", "Record the bill's state"},
		{"recon.final", "账单已支付，状态不再变化。", "The bill is paid; its state no longer changes."},
		{"recon.history", "状态记录", "State history"},
		{"recon.src.console", "控制台", "console"},
		{"recon.src.import", "详单导入", "bill-detail import"},
		{"recon.invoice", "发票", "Invoice"},
		{"recon.invoiceNo", "发票号", "Invoice number"},
		{"recon.date", "日期", "Date"},
		{"recon.recordInvoice", "登记发票", "Record the invoice"},
		{"recon.receipts", "回款记录", "Payments received"},
		{"recon.reference", "回款流水号", "Payment reference"},
		{"recon.recordReceipt", "登记回款", "Record a payment"},
		{"recon.outstandingOnly", "只看未结清", "Outstanding only"},
		{"recon.allBills", "查看全部账单（含已结清）", "All bills, paid ones too"},
		{"recon.owedTotal", "平台共欠（元）：", "The marketplace owes (yuan):"},
		{"recon.since", "应收起始日", "Owed since"},
		{"recon.days", "天数", "Days"},
		{"recon.nothingOwed", "平台没有欠款。", "The marketplace owes nothing."},
		{"rk.MARKETPLACE_ONLY", "仅平台有", "Marketplace only"},
		{"rk.KOOFLOW_ONLY", "仅 kooflow 有", "kooflow only"},
		{"rk.AMOUNT", "金额不一致", "Amount differs"},
		{"rs.BILLED", "出账", "Billed (出账)"},
		{"rs.COUNTERSIGN_PENDING", "会签 · 待会签", "Countersign: pending (待会签)"},
		{"rs.COUNTERSIGNING", "会签 · 会签中", "Countersign: in progress (会签中)"},
		{"rs.COUNTERSIGN_REJECTED", "会签 · 会签驳回", "Countersign: rejected (会签驳回)"},
		{"rs.PAYMENT_APPLICATION_PENDING", "申付 · 待申付", "Payment application: pending (待申付)"},
		{"rs.PAYMENT_APPLICATION_FAILED", "申付 · 申付单创建失败", "Payment application: creation failed (申付单创建失败)"},
		{"rs.PAYMENT_APPLICATION_REVIEW", "申付 · 申付审核", "Payment application: in review (申付审核)"},
		{"rs.PAYMENT_PROCESSING", "申付 · 申付处理中", "Payment application: processing (申付处理中)"},
		{"rs.PAID", "支付", "Paid (支付)"},
		{"done.recon-imported", "详单已导入并完成对账。", "The bill detail was imported and reconciled."},
		{"done.recon-already", "此文件之前已导入，显示其对账结果。", "This file was imported before; its reconciliation is shown."},
		{"done.recon-state", "已更新账单状态。", "The bill's state was recorded."},
		{"done.recon-invoice", "已登记发票。", "The invoice was recorded."},
		{"done.recon-receipt", "已登记回款。", "The payment was recorded."},

		{"usage.title", "按需用量", "Pay-per-use usage"},
		{"usage.ingested", "已接收用量", "Ingested"},
		{"usage.pushed", "已推送并计费", "Pushed and charged"},
		{"usage.pending", "待推送", "Pending"},
		{"usage.pendingRecords", "待推送记录（条）", "Records waiting for a push"},
		{"usage.refused", "平台拒收", "Refused"},
		{"usage.parked", "推送已挂起", "Push parked"},
		{"usage.resume", "恢复用量推送", "Resume the usage push"},
		{"usage.windows", "最近的小时窗口", "Latest hourly windows"},
		{"usage.hour", "窗口（小时）", "Window (hour)"},
		{"usage.notParked", "实例 %s 的用量推送未挂起。", "The usage push of instance %s is not parked."},
		{"done.usage-resumed", "已恢复用量推送，待推送的记录随下一次推送发送。", "The usage push was resumed; pending records go with the next push."},

		{"settings.note", "当前进程生效的配置；密钥和令牌只显示是否已设置。", "The configuration this process runs with; secrets and tokens show only whether they are set."},
		{"settings.name", "环境变量", "Variable"},
		{"settings.value", "值", "Value"},
		{"settings.unset", "未设置", "not set"},
		{"settings.setHidden", "已设置（不显示）", "set (hidden)"},
		{"settings.allScopes", "全部权限", "every scope"},
		{"settings.keyIDs", "密钥 ID：", "key ids:"},
	}
}
