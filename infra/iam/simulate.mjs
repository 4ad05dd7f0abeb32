// Evaluates IAM requests with @cloud-copilot/iam-simulate (an IAM policy simulator:
// identity, resource, trust and KMS key policies, every condition operator, and the
// action/resource/context-key validation of the service reference).
//
// stdin: a JSON array of {request, identityPolicies, resourcePolicy?}; stdout: a JSON
// array of {result, errors?, allowedBy?, deniedBy?} in the same order, where result is
// Allowed, ExplicitlyDenied, ImplicitlyDenied or Error. Strict mode: a context key the
// request does not carry is absent, as on AWS.
import { runSimulation } from '@cloud-copilot/iam-simulate'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const cases = JSON.parse(Buffer.concat(chunks).toString('utf8'))

const sids = (analysis, kind) =>
  (analysis?.[kind] ?? []).map((s) => {
    const sid = typeof s.statement?.sid === 'function' ? s.statement.sid() : undefined
    return sid ? `${s.policyId}#${sid}` : s.policyId
  })

const out = []
for (const c of cases) {
  const simulation = {
    request: c.request,
    identityPolicies: c.identityPolicies ?? [],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    ...(c.resourcePolicy ? { resourcePolicy: c.resourcePolicy } : {})
  }
  const r = await runSimulation(simulation, { simulationMode: 'Strict' })
  if (r.resultType === 'error') {
    out.push({ result: 'Error', errors: r.errors })
  } else if (r.resultType === 'single') {
    const a = r.result.analysis
    out.push({
      result: r.overallResult,
      allowedBy: [
        ...sids(a?.identityAnalysis, 'allowStatements'),
        ...sids(a?.resourceAnalysis, 'allowStatements')
      ]
    })
  } else {
    out.push({ result: 'Error', errors: { message: `unexpected result type ${r.resultType}` } })
  }
}
process.stdout.write(JSON.stringify(out))
