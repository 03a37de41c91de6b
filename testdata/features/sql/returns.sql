-- Share of a customer's order lines that came back, and their value.
select
    o.o_custkey as c_custkey,
    avg(case when l.l_returnflag = 'R' then 1.0 else 0.0 end) as return_share,
    sum(case when l.l_returnflag = 'R' then l.l_extendedprice else 0 end) as returned_value
from orders o
join lineitem l on l.l_orderkey = o.o_orderkey
group by o.o_custkey
