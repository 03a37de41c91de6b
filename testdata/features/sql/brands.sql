-- How many different brands and part types a customer bought.
select
    o.o_custkey as c_custkey,
    count(distinct p.p_brand) as n_brands,
    count(distinct p.p_type) as n_part_types
from orders o
join lineitem l on l.l_orderkey = o.o_orderkey
join part p on p.p_partkey = l.l_partkey
group by o.o_custkey
