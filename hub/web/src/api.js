// Calls to the hub's API on the session cookie. Writes carry X-Requested-With, which the
// hub demands of cookie-authenticated writes (a page on another site cannot add it).
// Failures become ApiError with the hub's code, message and offending field.

export class ApiError extends Error {
  constructor(status, body) {
    const err = body?.error ?? {}
    super(err.message ?? `HTTP ${status}`)
    this.status = status
    this.code = err.code
    this.field = err.field
    this.allowed = err.allowed
  }
}

async function call(method, path, body) {
  const headers = { Accept: 'application/json' }
  if (method !== 'GET') headers['X-Requested-With'] = 'hub-dashboard'
  const raw = body instanceof Blob
  if (body !== undefined) headers['Content-Type'] = raw ? body.type : 'application/json'
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined || raw ? body : JSON.stringify(body),
  })
  if (res.status === 204) return null
  const text = await res.text()
  let parsed = null
  try {
    parsed = text ? JSON.parse(text) : null
  } catch {
    parsed = null
  }
  if (!res.ok) throw new ApiError(res.status, parsed)
  return parsed
}

export const api = {
  get: (path) => call('GET', path),
  post: (path, body) => call('POST', path, body),
  put: (path, body) => call('PUT', path, body),
  del: (path) => call('DELETE', path),
  /** POSTs a file as the raw body, with its own content type. */
  upload: (path, file) => call('POST', path, file),
}

/** A query string from the defined, non-empty values of `params`. */
export function query(params) {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v))
  }
  const s = q.toString()
  return s ? `?${s}` : ''
}

/** Where an evidence blob can be fetched (the browser sends the session cookie). */
export const blobUrl = (sha256) => `/api/v1/blobs/${encodeURIComponent(sha256)}`
