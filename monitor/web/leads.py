"""Pages for leads and admins (filled in by the lead pages step)."""

routes: list = []
