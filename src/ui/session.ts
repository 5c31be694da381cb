/** Where the dashboard keeps the token it signed in with: session storage, gone with the tab, never in a URL. */
export const uiTokenKey = 'flatdepot.token'
