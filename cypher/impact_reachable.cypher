// Reference query for Neo4j Browser users: every CI a failure of $seeds reaches, walking against
// the arrows over relationship types whose impact is required or redundant, with its shortest hop
// count. This is the topology engine's impacted set (DOWN and DEGRADED; retired CIs take no part)
// and its breadth-first distances; the tests check that both agree.
// __IMPACT_TYPES__ is the model's required/redundant types joined by |, __MAX_DEPTH__ a hop limit
// (empty: none). In the Browser, write them out, e.g. :DEPENDS_ON|RUNS_ON|HOSTED_ON and {1,}.
MATCH (s:Node)
WHERE s.id IN $seeds
MATCH p = ANY SHORTEST (s) (()<-[:__IMPACT_TYPES__]-(m:Node WHERE coalesce(m.status, '') <> 'retired')){1,__MAX_DEPTH__} (n:Node)
WHERE NOT n.id IN $seeds
RETURN n.id AS id, min(length(p)) AS distance
ORDER BY distance, id
