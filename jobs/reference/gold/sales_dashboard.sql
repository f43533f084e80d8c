SELECT CAST(date_trunc('month', order_date) AS DATE) AS order_month,
       market_segment,
       COUNT(*) AS orders,
       CAST(SUM(total_price) AS DECIMAL(38, 2)) AS revenue,
       COUNT(DISTINCT customer_key) AS distinct_customers
FROM silver.orders
GROUP BY 1, 2
