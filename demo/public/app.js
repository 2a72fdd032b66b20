// The whole client side of a Gatehouse app: same-origin fetch with the
// anti-forgery header, and a redirect to login on 401. No token in sight.
const csrfHeaders = { 'x-csrf': '1' }
const $ = (id) => document.getElementById(id)

async function api(path, init = {}) {
  const response = await fetch(path, { ...init, headers: csrfHeaders, credentials: 'same-origin' })
  let body = null
  try {
    body = await response.json()
  } catch {}
  return { status: response.status, body }
}

function show(signedIn) {
  $('signed-in').hidden = !signedIn
  $('signed-out').hidden = signedIn
}

async function loadUser() {
  const { status, body } = await api('/auth/user')
  if (status !== 200) {
    show(false)
    $('status').textContent = ''
    return null
  }
  show(true)
  $('who').textContent = body.claims.name ? `${body.claims.name} (${body.sub})` : body.sub
  $('session-ends').textContent = new Date(body.sessionExpiresAt).toLocaleString()
  $('logout').href = body.logoutUrl
  $('status').textContent = ''
  return body
}

function addRow(route, status, body) {
  const row = document.createElement('tr')
  const seen = body?.token
  const cells = [
    new Date().toLocaleTimeString(),
    route,
    String(status),
    seen?.present
      ? `${seen.fingerprint}${seen.sub ? ` · sub ${seen.sub}` : ''}${seen.client_id ? ` · client ${seen.client_id}` : ''}`
      : (body?.error ?? 'none'),
    seen?.exp ? new Date(seen.exp * 1000).toLocaleTimeString() : '',
  ]
  for (const text of cells) {
    const cell = document.createElement('td')
    cell.textContent = text
    row.append(cell)
  }
  row.children[2].className = status === 200 ? 'ok' : 'bad'
  row.dataset.status = String(status)
  $('calls').querySelector('tbody').prepend(row)
}

async function call(route) {
  const { status, body } = await api(route)
  addRow(route, status, body)
  if (status === 401) window.location.href = `/auth/login?returnTo=${encodeURIComponent(location.pathname)}`
}

/**
 * The gateway's own counters, from the Prometheus text of its metrics
 * listener, which the demo config routes at /demo/metrics.
 */
async function counters() {
  const response = await fetch('/demo/metrics', { headers: { 'x-csrf': '1' }, cache: 'no-store' })
  const text = await response.text()
  const sum = (name, label) =>
    text
      .split('\n')
      .filter((line) => (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) && line.includes(label))
      .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0)
  return {
    calls: sum('gatehouse_http_requests_total', 'route="/api/orders'),
    refreshes: sum('gatehouse_token_refreshes_total', 'outcome="success"'),
    joins: sum('gatehouse_refresh_joins_total', ''),
  }
}

async function burst(count) {
  $('fire').disabled = true
  $('burst').hidden = false
  $('burst').dataset.done = 'false'
  const before = await counters()
  let answered = 0
  const statuses = new Set()
  const tokens = new Map()
  await Promise.all(
    Array.from({ length: count }, async () => {
      // no-store: otherwise the browser's cache lets one request for a URL
      // through at a time, and the calls would not reach Gatehouse at once.
      const { status, body } = await api('/api/orders', { cache: 'no-store' })
      answered++
      statuses.add(status)
      if (body?.token?.present) tokens.set(body.token.fingerprint, body.token.exp)
      $('burst-answered').textContent = `${answered} of ${count}`
    }),
  )
  // The gateway counts a call once its answer is written, which can be a
  // moment after the browser has it: poll, briefly, until all are counted.
  let after = await counters()
  for (let i = 0; i < 50 && after.calls - before.calls < count; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    after = await counters()
  }
  const ok = statuses.size === 1 && statuses.has(200)
  $('burst-answered').textContent =
    `${answered} of ${count}, ${ok ? 'all 200' : `statuses ${[...statuses].join(', ')}`}`
  $('burst-calls').textContent = String(after.calls - before.calls)
  $('burst-refreshes').textContent = String(after.refreshes - before.refreshes)
  $('burst-joins').textContent = String(after.joins - before.joins)
  $('burst-token').textContent = [...tokens.keys()].join(', ')
  $('burst-expires').textContent = [...tokens.values()]
    .map((exp) => (exp ? new Date(exp * 1000).toLocaleTimeString() : ''))
    .join(', ')
  $('burst').dataset.done = 'true'
  $('fire').disabled = false
  if (statuses.has(401))
    window.location.href = `/auth/login?returnTo=${encodeURIComponent(location.pathname)}`
}

$('call-user').addEventListener('click', () => call('/api/orders'))
$('fire').addEventListener('click', () => burst(50))
$('call-client').addEventListener('click', () => call('/api/reports'))
loadUser()
