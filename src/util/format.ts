const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

/** A byte count for people: 1024-based units, one decimal above bytes. */
export function bytes(count: number): string {
  let value = count
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`
}
