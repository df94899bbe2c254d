// The hub's live feed (server-sent events on the session cookie). EventSource reconnects
// by itself; after a reconnect or a `lagged` notice the page reloads from the API, since
// the feed is best-effort and the API is the source of truth.
import { onBeforeUnmount, ref } from 'vue'

export function useLiveFeed(handlers) {
  const connected = ref(false)
  const source = new EventSource('/api/v1/stream')
  let everConnected = false
  source.addEventListener('ready', () => {
    connected.value = true
    if (everConnected) handlers.resync?.()
    everConnected = true
  })
  source.addEventListener('lagged', () => handlers.resync?.())
  for (const kind of ['event', 'case']) {
    source.addEventListener(kind, (msg) => {
      let data
      try {
        data = JSON.parse(msg.data)
      } catch {
        return
      }
      handlers[kind]?.(data)
    })
  }
  source.onerror = () => {
    connected.value = false
  }
  onBeforeUnmount(() => source.close())
  return { connected }
}

/** A short two-tone alert, for high-risk events when the operator has turned sound on. */
export function beep() {
  try {
    const ctx = new AudioContext()
    const osc = ctx.createOscillator()
    const gain = ctx.createGain()
    osc.connect(gain).connect(ctx.destination)
    gain.gain.value = 0.1
    osc.frequency.setValueAtTime(880, ctx.currentTime)
    osc.frequency.setValueAtTime(660, ctx.currentTime + 0.15)
    osc.start()
    osc.stop(ctx.currentTime + 0.3)
    osc.onended = () => ctx.close()
  } catch {
    // No audio device: the highlight still shows.
  }
}
