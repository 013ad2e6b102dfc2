//! A faithful, embeddable simulator of Cloudflare's registration workflow API.
