"""faust agents and timers: the vote stage, live publishing, state expiry."""
