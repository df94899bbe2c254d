// Who is signed in. The session itself is an HttpOnly cookie the page never sees; this
// only remembers what the hub said about it.
import { reactive } from 'vue'
import { api } from './api.js'

export const session = reactive({ checked: false, user: null })

export async function loadSession() {
  session.user = (await api.get('/api/v1/session')).user
  session.checked = true
}

export async function signIn(name, password) {
  session.user = await api.post('/api/v1/session', { name, password })
  session.checked = true
}

/** Replaces the password; a temporary one's user may then use the dashboard. */
export async function changePassword(current, next) {
  await api.put('/api/v1/session/password', { current, new: next })
  session.user = { ...session.user, password_change_due: false }
}

/** Forgets the user first, so the pages close their streams before the session ends. */
export async function signOut() {
  session.user = null
  await api.del('/api/v1/session')
}
