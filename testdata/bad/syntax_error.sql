-- a syntax error on line 2
select 1;
selec name frm nation;
