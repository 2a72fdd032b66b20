// The whole client side of a Gatehouse app: same-origin fetch with the
// anti-forgery header, and a redirect to login on 401. No token in sight.
const csrfHeaders = { 'x-csrf': '1' }
const $ = (id) => document.getElementById(id)

async function api(path) {
  const response = await fetch(path, { headers: csrfHeaders, credentials: 'same-origin' })
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

$('call-user').addEventListener('click', () => call('/api/orders'))
$('call-client').addEventListener('click', () => call('/api/reports'))
loadUser()
