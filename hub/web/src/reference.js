// Names for the codes the hub stores — category codes (component:0114) and department ids
// (housing-bureau) — from the hub's reference data, loaded once per sign-in. A code the
// lists do not name shows as itself, so nothing ever disappears from a screen.
import { reactive } from 'vue'
import { api } from './api.js'
import { locale } from './i18n.js'

const lists = reactive({ categories: new Map(), departments: new Map() })

export async function loadReference() {
  const [categories, departments] = await Promise.all([
    api.get('/api/v1/reference/categories'),
    api.get('/api/v1/reference/departments'),
  ])
  lists.categories = new Map(categories.rows.map((c) => [c.code, c]))
  lists.departments = new Map(departments.rows.map((d) => [d.id, d]))
}

/** `无主井盖 component:0114` (the English name when English is chosen and known); a minor
 * class missing from the catalogue gets its major class's name. */
export function categoryLabel(code) {
  if (!code) return ''
  const major = code.replace(/^(\w+:\d\d)\d\d$/, '$1')
  const entry = lists.categories.get(code) ?? lists.categories.get(major)
  if (!entry) return code
  const name = locale.value === 'en' && entry.name_en ? entry.name_en : entry.name
  return `${name} ${code}`
}

/** The department's name, or its id when the list does not have it. */
export function departmentLabel(id) {
  if (!id) return ''
  return lists.departments.get(id)?.name ?? id
}
