-- How many different brands a customer bought. One DISTINCT aggregate per
-- query: DataFusion rewrites it into a two-level GROUP BY; several DISTINCT
-- aggregates in one query keep a set of values per group and are about
-- 100 x slower at SF 1.
select
    o.o_custkey as c_custkey,
    count(distinct p.p_brand) as n_brands
from orders o
join lineitem l on l.l_orderkey = o.o_orderkey
join part p on p.p_partkey = l.l_partkey
group by o.o_custkey
