"""What the offices read: daily and period reports, risk pictures, the incident look-back, and scoring of
alerts against a ground truth.
May import: geomon.store, geomon.engine, geomon.tracks, geomon.rules, geomon.geo, geomon.io, geomon.schema,
geomon.errors.
"""
