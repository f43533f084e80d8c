-- bronze.orders columns, plus three from the customer.
SELECT o.order_key,
       o.customer_key,
       o.order_status,
       o.total_price,
       o.order_date,
       o.order_priority,
       o.clerk,
       o.ship_priority,
       o.comment,
       o.loaded_at,
       o.source_file,
       o.job_id,
       c.name AS customer_name,
       c.market_segment,
       c.nation_key
FROM latest_orders o
JOIN silver.customers c ON o.customer_key = c.customer_key
