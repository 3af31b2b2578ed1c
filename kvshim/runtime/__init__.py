"""The timeline runtime behind ``kvshim run``: work out the timeline, pick its database, serve
the app, and follow code edits and branch switches while it runs."""
