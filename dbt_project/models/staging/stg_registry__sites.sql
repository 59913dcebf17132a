with sites as (
    select * from {{ source('registry', 'sites') }}
)

select
    site_id,
    display_name,
    region,
    peer_group,
    active_from,
    active_to,
    blinded_code
from sites
