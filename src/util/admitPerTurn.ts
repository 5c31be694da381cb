/** Runs the functions given to it in order, at most `perTurn` of them per pass of the event loop. */
export function admitPerTurn(perTurn: number): (start: () => void) => void {
  const waiting: (() => void)[] = []
  let scheduled = false
  const drain = () => {
    scheduled = false
    for (const start of waiting.splice(0, perTurn)) start()
    schedule()
  }
  const schedule = () => {
    if (scheduled || waiting.length === 0) return
    scheduled = true
    setImmediate(drain)
  }
  return (start) => {
    waiting.push(start)
    schedule()
  }
}
