// The runtime configuration, read from /config.json: the same build runs locally (the gateway
// writes it) and from S3 + CloudFront (the deploy writes it).

export type AuthConfig =
  | { mode: "dev" }
  | { mode: "oidc"; issuer: string; client_id: string; scope: string }
  | { mode: "none" };

export interface RuntimeConfig {
  /** Empty: the API is on this origin. */
  api_base: string;
  /** Empty: /ws on this origin. */
  ws_url: string;
  auth: AuthConfig;
}

export async function loadConfig(fetcher: typeof fetch = fetch): Promise<RuntimeConfig> {
  const response = await fetcher("/config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json answered ${response.status}`);
  return (await response.json()) as RuntimeConfig;
}

/** The WebSocket URL: configured, or /ws on the page's own origin. */
export function websocketUrl(config: RuntimeConfig, location: { protocol: string; host: string }): string {
  if (config.ws_url) return config.ws_url;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}
