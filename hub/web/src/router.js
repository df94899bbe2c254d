// Pages by hash (#/cases/…), so the hub serves one index.html and needs no route table of
// its own. Every page but sign-in needs a signed-in user; roles limit the pages shown.
import { createRouter, createWebHashHistory } from 'vue-router'
import { session, loadSession } from './session.js'
import LoginView from './views/LoginView.vue'
import LiveView from './views/LiveView.vue'
import CasesView from './views/CasesView.vue'
import CaseView from './views/CaseView.vue'
import MapView from './views/MapView.vue'
import StatsView from './views/StatsView.vue'
import DevicesView from './views/DevicesView.vue'

export const routes = [
  { path: '/login', component: LoginView, meta: { public: true } },
  { path: '/live', component: LiveView, meta: { roles: ['admin', 'operator'] } },
  { path: '/cases', component: CasesView, meta: { roles: ['admin', 'operator', 'department'] } },
  { path: '/cases/:id', component: CaseView, props: true, meta: { roles: ['admin', 'operator', 'department'] } },
  { path: '/map', component: MapView, meta: { roles: ['admin', 'operator', 'department'] } },
  { path: '/stats', component: StatsView, meta: { roles: ['admin', 'operator', 'department'] } },
  { path: '/devices', component: DevicesView, meta: { roles: ['admin', 'operator', 'technician'] } },
  { path: '/:rest(.*)*', redirect: () => homeFor(session.user) },
]

/** The first page a role sees. */
export function homeFor(user) {
  if (!user) return '/login'
  return { admin: '/live', operator: '/live', department: '/cases', technician: '/devices' }[user.role] ?? '/login'
}

export const router = createRouter({ history: createWebHashHistory(), routes })

router.beforeEach(async (to) => {
  if (!session.checked) await loadSession()
  // A password someone else set is replaced before anything else.
  if (session.user?.password_change_due) return to.path === '/login' ? true : '/login'
  if (to.meta.public) return session.user ? homeFor(session.user) : true
  if (!session.user) return { path: '/login', query: { next: to.fullPath } }
  if (to.meta.roles && !to.meta.roles.includes(session.user.role)) return homeFor(session.user)
  return true
})
