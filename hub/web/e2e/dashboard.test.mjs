// The dashboard in Debian's Chromium, against a real hub with seeded users (started by
// tests/system/dashboard.rs, which passes the hub's address and credentials in the
// environment). One story, in order: sign in; an event posted to the ingest API appears on
// the live page without a reload; the operator dispatches its case; the department
// handles it; the operator verifies and closes it; the statistics count the closure;
// another department never sees the case. Screenshots of each page go to ARTIFACTS; any
// console error or uncaught page error fails the test.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'

const env = (name) => {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set; run this through tests/system/dashboard.rs`)
  return v
}
const HUB = env('HUB_URL')
const GATEWAY_ID = env('GATEWAY_ID')
const GATEWAY_TOKEN = env('GATEWAY_TOKEN')
const PASSWORD = env('USER_PASSWORD')
const CAMERA_PASSWORD = env('CAMERA_PASSWORD')
const IMAGE = env('TEST_IMAGE')
const ARTIFACTS = env('ARTIFACTS')
mkdirSync(ARTIFACTS, { recursive: true })

let browser
const problems = []

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
    ],
    // launch() gives every run a fresh, temporary profile of its own.
  })
})

after(async () => {
  await browser?.close()
})

/** Collects `page`'s console errors and uncaught errors into `problems`. */
function watch(page, who) {
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return
    const url = msg.location()?.url
    problems.push(`${who}: console error: ${msg.text()}${url ? ` (${url})` : ''}`)
  })
  page.on('pageerror', (err) => problems.push(`${who}: page error: ${err.message}`))
  return page
}

/** A page in a fresh browser context (its own cookies), watched for console errors. */
async function newPage(who, viewport = { width: 1920, height: 1080 }) {
  const context = await browser.newContext({ viewport, locale: 'zh-CN' })
  return watch(await context.newPage(), who)
}

async function signIn(page, name) {
  await page.goto(HUB)
  await page.getByLabel('用户名').fill(name)
  await page.getByLabel('密码').fill(PASSWORD)
  await page.getByRole('button', { name: '登录' }).click()
  await page.getByTestId('who').waitFor()
}

const shot = (page, name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true })

/** A UUIDv7, as gateways mint event ids. */
function uuidv7() {
  const b = randomBytes(16)
  const ms = BigInt(Date.now())
  for (let i = 0; i < 6; i++) b[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn)
  b[6] = (b[6] & 0x0f) | 0x70
  b[8] = (b[8] & 0x3f) | 0x80
  const h = b.toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

async function gatewayCall(method, path, body, contentType) {
  const res = await fetch(`${HUB}${path}`, {
    method,
    headers: { Authorization: `Bearer ${GATEWAY_TOKEN}`, 'Content-Type': contentType },
    body,
  })
  if (!res.ok) assert.fail(`${method} ${path}: ${res.status} ${await res.text()}`)
  return (res.headers.get('content-type') ?? '').startsWith('application/json') ? res.json() : null
}

/** Uploads `bytes` as a gateway does; its evidence reference. */
async function upload(kind, bytes, contentType) {
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  await gatewayCall('PUT', `/api/v1/blobs/${sha256}`, bytes, contentType)
  return { kind, sha256, content_type: contentType, bytes: bytes.length }
}

/** A 2 s H.264 clip in MP4, made by FFmpeg, as the gateway sends with a camera event. */
function makeClip() {
  const file = join(tmpdir(), `clip-${process.pid}.mp4`)
  execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=25', '-t', '2',
    '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', file])
  return readFileSync(file)
}

/** Uploads the test photo (and a clip, if asked) and posts one event citing them. */
async function postEvent(category, { clip = false } = {}) {
  const evidence = [await upload('photo', readFileSync(IMAGE), 'image/jpeg')]
  if (clip) evidence.push(await upload('clip', makeClip(), 'video/mp4'))
  const event = {
    v: 1,
    id: uuidv7(),
    gateway_id: GATEWAY_ID,
    source: { type: 'patrol_terminal', terminal_id: 't-web-1' },
    rule: 'patrol_report',
    category,
    occurred_at: new Date().toISOString(),
    location: { lat: 30.2741, lon: 120.1551, area_code: '330106001001', grid: 'grid-web-7' },
    severity: 'high',
    description: '井盖破损 broken manhole cover',
    evidence,
  }
  const ack = await gatewayCall('POST', '/api/v1/events', JSON.stringify({ v: 1, gateway_id: GATEWAY_ID, events: [event] }), 'application/json')
  assert.deepEqual(ack.accepted, [event.id], 'the hub acknowledged the event')
  return event.id
}

async function closedCount(page) {
  await page.goto(`${HUB}/#/stats`)
  const tile = page.locator('[data-stat="closed"] .value')
  await tile.waitFor()
  return Number(await tile.textContent())
}

test('operators and departments run a case through the dashboard', async () => {
  const op = await newPage('operator')
  await signIn(op, 'op-web')
  await op.waitForURL(/#\/live/)
  await shot(op, '01-live-empty')
  const closedBefore = await closedCount(op)

  // Live: an event pushed by a gateway shows up on the open page, no reload.
  await op.goto(`${HUB}/#/live`)
  await op.getByTestId('feed-status').filter({ hasText: '已连接' }).waitFor()
  const posted = Date.now()
  const eventId = await postEvent('component:0114', { clip: true })
  const row = op.locator(`[data-event-id="${eventId}"]`)
  await row.waitFor({ timeout: 10_000 })
  const latency = Date.now() - posted
  console.log(`live feed: the event appeared ${latency} ms after it was posted`)
  assert.ok(await row.locator('img.thumb').isVisible(), 'the photo thumbnail is shown')
  assert.match(await row.innerText(), /无主井盖 component:0114/, 'the category by its catalogue name')
  assert.match(await row.getAttribute('class'), /sev-high/, 'high risk is highlighted')
  await op.locator('img.thumb').first().evaluate((img) => img.decode())
  await shot(op, '02-live-event')

  // Case: open it from the event and dispatch it to the police.
  await row.getByRole('link').click()
  await op.getByTestId('case-state').filter({ hasText: '上报' }).waitFor()
  const caseId = op.url().split('/cases/')[1]
  // The evidence: the photo as a picture, the clip as a video the browser can play.
  const clip = op.locator('.evidence video')
  assert.equal(await clip.count(), 1, 'the clip is shown as a video')
  const duration = await clip.evaluate((v) =>
    v.readyState >= 1 ? v.duration : new Promise((ok, fail) => {
      v.addEventListener('loadedmetadata', () => ok(v.duration))
      v.addEventListener('error', () => fail(new Error(`the clip does not load: ${v.error?.code}`)))
    }))
  assert.ok(duration > 1.5 && duration < 2.5, `the clip lasts ${duration} s`)
  await op.getByLabel('派遣部门').fill('police')
  await op.getByLabel('时限').fill('4 working_hours')
  await op.locator('[data-action="dispatch"]').click()
  await op.getByTestId('case-state').filter({ hasText: '已派遣' }).waitFor()
  // The centre presses the department with a supervision notice.
  await op.getByLabel('督办内容').fill('领导督办：今天内处理 the county head asks for today')
  await op.getByRole('button', { name: '发出督办' }).click()
  await op.getByTestId('supervision').getByText('领导督办：今天内处理').waitFor()
  await shot(op, '03-case-dispatched')

  // Map: the open case among the area and grid outlines (no tile server: offline).
  const map = watch(await op.context().newPage(), 'operator map')
  await map.setViewportSize({ width: 1920, height: 1080 })
  await map.goto(`${HUB}/#/map`)
  await map.getByTestId('map-counts').filter({ hasText: '1 件案件 · 1 个事件 · 8 个区域' }).waitFor()
  assert.equal(await map.locator('path.case-marker').count(), 1, 'one open case on the map')
  assert.equal(await map.locator('path.event-marker').count(), 1, 'and its event')
  assert.equal(await map.locator('path.heat-cell').count(), 1, 'one heat cell')
  await map.locator('path.case-marker').click()
  await map.locator('.leaflet-popup').getByRole('link').waitFor()
  await shot(map, '03b-map')
  await map.close()

  // The police handler finds it in the queue, accepts and handles it.
  const police = await newPage('police', { width: 1366, height: 768 })
  await signIn(police, 'police-web')
  await police.waitForURL(/#\/cases/)
  await police.locator(`[data-case-id="${caseId}"] a`).click()
  await police.locator('[data-action="accept"]').click()
  await police.getByTestId('case-state').filter({ hasText: '处置中' }).waitFor()
  await police.getByTestId('supervision').getByLabel('回复').fill('已安排人员 a crew is on its way')
  await police.getByRole('button', { name: '提交回复' }).click()
  await police.getByTestId('supervision').getByText('已安排人员 a crew is on its way').waitFor()
  // More time, asked for by the department and granted by the centre on its open page.
  await police.getByLabel('延长时限').fill('1 working_days')
  await police.getByLabel('延期理由').fill('等待配件 waiting for a replacement cover')
  await police.getByRole('button', { name: '申请延期' }).click()
  await police.getByTestId('extensions').locator('[data-state="pending"]').waitFor()
  await op.getByLabel('审批意见').fill('同意 approved')
  await op.getByRole('button', { name: '同意延期' }).click()
  await op.getByTestId('extensions').locator('[data-state="approved"]').waitFor()
  await police.getByTestId('extensions').locator('[data-state="approved"]').waitFor()
  // A long-running item put on the ledger (挂账): the deadline pauses until it is resumed.
  await police.getByLabel('缓办类型').selectOption('ledger')
  await police.getByLabel('缓办理由').fill('需市级立项 needs a city project')
  await police.getByRole('button', { name: '申请缓办/挂账' }).click()
  await police.getByTestId('deferrals').locator('[data-state="pending"]').waitFor()
  await op.getByTestId('deferrals').getByLabel('审批意见').fill('同意 agreed')
  await op.getByTestId('deferrals').getByRole('button', { name: '同意', exact: true }).click()
  await police.getByTestId('deferred').waitFor()
  assert.equal(await police.locator('[data-action="handle"]').count(), 0, 'no handling report while deferred')
  await police.getByLabel('恢复说明').fill('立项了 funded')
  await police.getByRole('button', { name: '恢复办理' }).click()
  await police.getByTestId('deferrals').locator('[data-state="ended"]').waitFor()

  // The fix, with an "after" photo.
  await police.getByLabel('照片类型').selectOption('after')
  await police.getByLabel('照片（JPEG/PNG）').setInputFiles(IMAGE)
  await police.getByRole('button', { name: '上传照片' }).click()
  await police.getByText('处置后 · user:police-web').waitFor()
  await police.getByLabel('意见').fill('已更换井盖 cover replaced')
  await police.locator('[data-action="handle"]').click()
  await police.getByTestId('case-state').filter({ hasText: '已处置' }).waitFor()
  await shot(police, '04-case-handled-by-department')

  // Another department sees neither the case in its queue nor the case itself.
  const fire = await newPage('fire')
  await signIn(fire, 'fire-web')
  await fire.waitForURL(/#\/cases/)
  await fire.getByText('共').waitFor()
  assert.equal(await fire.locator(`[data-case-id="${caseId}"]`).count(), 0)
  const peek = await fire.context().request.get(`${HUB}/api/v1/cases/${caseId}`)
  assert.equal(peek.status(), 404, "another department's case is not found")
  await shot(fire, '05-other-department-queue')

  // The operator's open case page follows along live, then verifies and closes.
  await op.getByTestId('case-state').filter({ hasText: '已处置' }).waitFor()
  await op.locator('[data-action="verify"]').click()
  await op.getByTestId('case-state').filter({ hasText: '核查中' }).waitFor()
  await op.locator('[data-action="close"]').click()
  await op.getByTestId('case-state').filter({ hasText: '结案' }).waitFor()
  const steps = await op.getByTestId('timeline').locator('[data-action]').evaluateAll((els) => els.map((e) => e.dataset.action))
  assert.deepEqual(
    steps,
    [
      'open', 'dispatch', 'supervise', 'accept', 'supervision_reply', 'extension_requested',
      'extension_approved', 'deferral_requested', 'deferral_approved', 'deferral_ended', 'photo',
      'handle', 'verify', 'close',
    ],
    'the timeline records every step, in order',
  )
  assert.ok((await op.getByTestId('timeline').textContent()).includes('派遣'), 'in Chinese')
  // The callback after closing.
  await op.getByLabel('满意度').selectOption('4')
  await op.getByLabel('回访结果').fill('群众满意 the reporter is satisfied')
  await op.getByRole('button', { name: '记录回访' }).click()
  await op.getByTestId('callbacks').getByText('4 分').waitFor()
  await shot(op, '06-case-closed')

  assert.equal(await closedCount(op), closedBefore + 1, 'the statistics count the closure')
  // The only case due was closed, and by its deadline.
  assert.equal(await op.locator('[data-stat="closure_rate"] .value').textContent(), '100.0%')
  assert.equal(await op.locator('[data-stat="on_time_closure_rate"] .value').textContent(), '100.0%')
  assert.equal(await op.locator('[data-stat="extension_rate"] .value').textContent(), '100.0%')
  assert.equal(await op.locator('[data-stat="satisfaction"] .value').textContent(), '4.0')
  await shot(op, '07-stats')

  const report = {
    v: 1,
    gateway_id: GATEWAY_ID,
    version: '0.1.0',
    outbox_pending: 0,
    cameras: [{
      camera_id: 'cam-east-gate', name: '东门摄像头 east gate', state: 'streaming', fps: 9.8,
      last_frame_at: new Date().toISOString(), reconnects: 0, events_raised: 1,
      last_event_at: new Date().toISOString(),
    }],
  }
  await gatewayCall('PUT', '/api/v1/gateway/report', JSON.stringify(report), 'application/json')
  await op.goto(`${HUB}/#/devices`)
  await op.getByTestId('gateways').getByRole('cell', { name: GATEWAY_ID }).first().waitFor()
  await op.getByTestId('cameras').getByRole('cell', { name: 'cam-east-gate' }).waitFor()
  assert.match(await op.getByTestId('cameras').textContent(), /在线/)
  // The device registry: the camera a technician entered, its password only as "set"; the
  // gateway has not taken the registry's configuration up.
  const registry = op.getByTestId('registry')
  await registry.getByRole('cell', { name: 'cam-east-gate' }).waitFor()
  assert.match(await registry.textContent(), /已设置/)
  assert.match(await registry.textContent(), /3301060010000123/)
  assert.ok(!(await op.content()).includes(CAMERA_PASSWORD), 'no camera password on the page')
  assert.match(await op.getByTestId('gateways').textContent(), /待同步/)
  // A patrol terminal issued in the registry, not connected yet: its holder and grid.
  const terminalsTable = op.getByTestId('terminals')
  await terminalsTable.getByRole('cell', { name: 'pt-zhang' }).waitFor()
  assert.match(await terminalsTable.textContent(), /张三 Zhang San[\s\S]*G-001[\s\S]*从未/)
  await shot(op, '08-devices')

  // English on request, remembered across pages.
  await op.getByRole('button', { name: 'English' }).click()
  await op.getByRole('link', { name: 'Cases' }).click()
  await op.getByRole('heading', { name: 'Case queue' }).waitFor()
  await shot(op, '09-cases-english')

  assert.deepEqual(problems, [], 'no console errors')
})

test('a user given a first password chooses their own before anything else', async () => {
  const page = await newPage('newcomer')
  await page.goto(HUB)
  await page.getByLabel('用户名').fill('new-web')
  await page.getByLabel('密码').fill(PASSWORD)
  await page.getByRole('button', { name: '登录' }).click()
  const form = page.getByTestId('password-form')
  await form.waitFor()
  // No way round it: another page leads back to the form.
  await page.goto(`${HUB}/#/cases`)
  await form.waitFor()
  await shot(page, '10-first-password')
  await form.getByLabel('当前密码').fill(PASSWORD)
  await form.getByLabel('新密码（至少 10 个字符）').fill('新的密码 my own 2026')
  await form.getByLabel('再次输入新密码').fill('新的密码 my own 2026')
  await form.getByRole('button', { name: '保存新密码' }).click()
  await page.waitForURL(/#\/cases/)
  await page.getByTestId('who').filter({ hasText: 'new-web' }).waitFor()
  const cases = await page.context().request.get(`${HUB}/api/v1/cases`)
  assert.equal(cases.status(), 200, 'the session goes on with the new password')
  assert.deepEqual(problems, [], 'no console errors')
})

test('signing out ends the session', async () => {
  const page = await newPage('signout')
  await signIn(page, 'op-web')
  await page.getByTestId('feed-status').filter({ hasText: '已连接' }).waitFor()
  // As a user would: once the feed shows its names and thumbnails, so no load of the page
  // is still waiting for a connection when the session ends.
  await page.getByText('无主井盖 component:0114').first().waitFor()
  await page.waitForFunction(() =>
    [...document.images].filter((img) => img.getBoundingClientRect().top < innerHeight).every((img) => img.complete),
  )
  // The page leaves for the sign-in form first and ends the session after it: wait for that.
  const ended = page.waitForResponse(
    (r) => r.url().endsWith('/api/v1/session') && r.request().method() === 'DELETE',
  )
  await page.getByRole('button', { name: '退出' }).click()
  await page.getByRole('button', { name: '登录' }).waitFor()
  assert.equal((await ended).status(), 204)
  const after = await page.context().request.get(`${HUB}/api/v1/cases`)
  assert.equal(after.status(), 401)
  assert.deepEqual(problems, [], 'no console errors')
})

test('every page passes an accessibility audit (axe-core, WCAG 2 A and AA)', async () => {
  // A context of its own that lets the audit script in despite the page's security policy.
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 }, locale: 'zh-CN', bypassCSP: true })
  const page = watch(await context.newPage(), 'audit')
  const audit = async (name) => {
    await page.addScriptTag({ path: join(import.meta.dirname, '../node_modules/axe-core/axe.min.js') })
    const result = await page.evaluate(() => window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa'] }))
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${name}: ${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`)
  }
  const found = []
  await page.goto(HUB)
  await page.getByRole('button', { name: '登录' }).waitFor()
  found.push(...(await audit('login')))
  await page.getByLabel('用户名').fill('op-web')
  await page.getByLabel('密码').fill(PASSWORD)
  await page.getByRole('button', { name: '登录' }).click()
  await page.getByTestId('who').waitFor()
  const pages = [
    ['live', '/#/live', '[data-testid="feed-status"]'],
    ['cases', '/#/cases', 'table.grid'],
    ['map', '/#/map', 'path.leaflet-interactive'],
    ['stats', '/#/stats', '[data-stat="cases"]'],
    ['devices', '/#/devices', '[data-testid="gateways"]'],
  ]
  for (const [name, path, ready] of pages) {
    await page.goto(`${HUB}${path}`)
    await page.locator(ready).first().waitFor()
    found.push(...(await audit(name)))
  }
  await page.goto(`${HUB}/#/cases`)
  await page.locator('table.grid a').first().click()
  await page.getByTestId('case-state').waitFor()
  found.push(...(await audit('case')))
  // Keyboard: the first Tab reaches the skip link, which leads to the page's content.
  await page.reload()
  await page.getByTestId('case-state').waitFor()
  const url = page.url()
  await page.keyboard.press('Tab')
  assert.equal(await page.evaluate(() => document.activeElement?.className), 'skip')
  await page.keyboard.press('Enter')
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'main')
  assert.equal(page.url(), url, 'the route stays')
  await context.close()
  assert.deepEqual(found, [], 'no serious or critical accessibility violations')
  assert.deepEqual(problems, [], 'no console errors')
})
