-- The marts Lakestar made, with the fingerprint of the query each was made from: a mart whose
-- contract definition changed is made again, and an object of that name that is not listed
-- here is the user's, never dropped.
CREATE TABLE lakestar_marts (
    name TEXT PRIMARY KEY,
    fact TEXT NOT NULL,
    fingerprint TEXT NOT NULL
);
