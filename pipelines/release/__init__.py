"""Release logic that runs outside Pulumi: resolving approved versions, checking endpoints,
smoke tests and the release bridges, one module per platform."""
