SELECT customer_key,
       customer_name,
       market_segment,
       nation_key,
       COUNT(*) AS order_count,
       CAST(SUM(total_price) AS DECIMAL(38, 2)) AS total_spend,
       CAST(SUM(total_price) AS DOUBLE) / COUNT(*) AS avg_order_value,
       MIN(order_date) AS first_order_date,
       MAX(order_date) AS last_order_date
FROM silver.orders
GROUP BY customer_key, customer_name, market_segment, nation_key
